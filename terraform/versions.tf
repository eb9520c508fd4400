terraform {
  required_version = ">= 1.6.0"

  required_providers {
    # Exact pin: the version mirrored for offline `terraform init -plugin-dir`.
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }
}
