# GitHub Actions (.github/workflows/ci.yaml) signs in with OIDC: no AWS keys are stored in
# the repository. Created only when var.github_repository is set.

locals {
  github_ci = var.github_repository != "" ? 1 : 0
}

resource "aws_iam_openid_connect_provider" "github" {
  count = local.github_ci

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "github_assume" {
  count = local.github_ci

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github[0].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:*"]
    }
  }
}

resource "aws_iam_role" "github_actions" {
  count = local.github_ci

  name               = "${var.name}-github-actions"
  assume_role_policy = data.aws_iam_policy_document.github_assume[0].json
}

data "aws_iam_policy_document" "github_actions" {
  count = local.github_ci

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "EcrPush"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [for repo in aws_ecr_repository.image : repo.arn]
  }
  statement {
    sid       = "Deploy"
    actions   = ["eks:DescribeCluster", "kafka:ListClustersV2", "kafka:GetBootstrapBrokers"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "github_actions" {
  count = local.github_ci

  name   = "ci"
  role   = aws_iam_role.github_actions[0].id
  policy = data.aws_iam_policy_document.github_actions[0].json
}

# Deploys need the Kubernetes API: cluster-admin through an EKS access entry (the engine
# creates a Namespace and KEDA/Prometheus custom resources). Narrow it if your CI deploys
# into an existing namespace only.
resource "aws_eks_access_entry" "github_actions" {
  count = local.github_ci

  cluster_name  = aws_eks_cluster.main.name
  principal_arn = aws_iam_role.github_actions[0].arn
  type          = "STANDARD"
}

resource "aws_eks_access_policy_association" "github_actions" {
  count = local.github_ci

  cluster_name  = aws_eks_cluster.main.name
  principal_arn = aws_iam_role.github_actions[0].arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }

  depends_on = [aws_eks_access_entry.github_actions]
}
