output "region" {
  description = "AWS region of everything."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.main.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.main.endpoint
}

output "kubeconfig_command" {
  description = "Writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${aws_eks_cluster.main.name}"
}

output "vpc_id" {
  description = "VPC id (the AWS Load Balancer Controller's vpcId value)."
  value       = aws_vpc.main.id
}

output "msk_bootstrap_brokers_sasl_iam" {
  description = "MSK bootstrap servers for IAM auth over TLS (port 9098): VAE_KAFKA_BOOTSTRAP."
  value       = aws_msk_cluster.main.bootstrap_brokers_sasl_iam
}

output "msk_cluster_arn" {
  description = "MSK cluster ARN."
  value       = aws_msk_cluster.main.arn
}

output "ecr_repository_urls" {
  description = "Image repositories by image: gateway, worker (CPU), worker-gpu."
  value       = { for name, repo in aws_ecr_repository.image : name => repo.repository_url }
}

output "image_registry" {
  description = "Registry and prefix of the images: <registry>/<name> (IMAGE_REGISTRY in the eks overlay)."
  value       = "${local.account_id}.dkr.ecr.${var.region}.amazonaws.com/${var.name}"
}

output "pod_role_arns" {
  description = "IAM role ARN of each service account (IRSA)."
  value       = { for key, role in aws_iam_role.pod : key => role.arn }
}

output "keda_operator_role_arn" {
  description = "For the KEDA chart: --set podIdentity.aws.irsa.enabled=true --set podIdentity.aws.irsa.roleArn=<this>."
  value       = aws_iam_role.pod["keda-operator"].arn
}

output "lb_controller_role_arn" {
  description = "For the aws-load-balancer-controller chart's service account annotation."
  value       = aws_iam_role.pod["aws-load-balancer-controller"].arn
}

output "cluster_autoscaler_role_arn" {
  description = "For the cluster-autoscaler chart's service account annotation."
  value       = aws_iam_role.pod["cluster-autoscaler"].arn
}

output "github_actions_role_arn" {
  description = "Role that .github/workflows/ci.yaml assumes (empty without var.github_repository)."
  value       = one(aws_iam_role.github_actions[*].arn)
}

# The two files of deploy/k8s/overlays/eks, ready to write:
#   terraform output -raw k8s_msk_env     > ../deploy/k8s/overlays/eks/msk.env
#   terraform output -raw k8s_cluster_env > ../deploy/k8s/overlays/eks/cluster.env
output "k8s_msk_env" {
  description = "VAE_* settings for MSK (deploy/k8s/overlays/eks/msk.env)."
  value = join("\n", [
    "VAE_KAFKA_BOOTSTRAP=${aws_msk_cluster.main.bootstrap_brokers_sasl_iam}",
    "VAE_KAFKA_AWS_REGION=${var.region}",
    "",
  ])
}

output "k8s_cluster_env" {
  description = "Images and IAM roles for the eks overlay (deploy/k8s/overlays/eks/cluster.env)."
  value = join("\n", [
    "IMAGE_REGISTRY=${local.account_id}.dkr.ecr.${var.region}.amazonaws.com/${var.name}",
    "IMAGE_TAG=${var.image_tag}",
    "GATEWAY_ROLE_ARN=${aws_iam_role.pod["gateway"].arn}",
    "WORKER_ROLE_ARN=${aws_iam_role.pod["worker"].arn}",
    "TOPICS_ROLE_ARN=${aws_iam_role.pod["topics"].arn}",
    "ANALYTICS_ROLE_ARN=${aws_iam_role.pod["analytics"].arn}",
    "",
  ])
}
