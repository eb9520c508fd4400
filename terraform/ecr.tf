# Image repositories: <name>/gateway, <name>/worker (CPU), <name>/worker-gpu.
# Tags are immutable (CI pushes commit SHAs), every push is scanned, old images expire.

locals {
  images = toset(["gateway", "worker", "worker-gpu"])
}

resource "aws_ecr_repository" "image" {
  for_each = local.images

  name                 = "${var.name}/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "image" {
  for_each = local.images

  repository = aws_ecr_repository.image[each.key].name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the 30 most recent images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = 30
        }
        action = { type = "expire" }
      }
    ]
  })
}
