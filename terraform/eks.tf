# EKS control plane, its OIDC provider (IAM roles for service accounts), managed add-ons,
# and two managed node groups: general (gateway and cluster services) and GPU (workers).

data "aws_iam_policy_document" "eks_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${var.name}-eks-cluster"
  assume_role_policy = data.aws_iam_policy_document.eks_assume.json
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_cloudwatch_log_group" "eks" {
  # EKS writes control-plane logs to this fixed name.
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = 14
}

resource "aws_eks_cluster" "main" {
  name     = var.name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  enabled_cluster_log_types = ["api", "audit", "authenticator"]

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  vpc_config {
    subnet_ids              = aws_subnet.private[*].id
    endpoint_private_access = true
    endpoint_public_access  = true
    public_access_cidrs     = var.cluster_endpoint_public_access_cidrs
  }

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_cloudwatch_log_group.eks,
  ]
}

# IRSA: pods exchange their service-account token for an IAM role's credentials.
# AWS verifies EKS OIDC tokens through its own trust store, so no thumbprint is pinned.
resource "aws_iam_openid_connect_provider" "eks" {
  url            = aws_eks_cluster.main.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}

locals {
  oidc_issuer_host = replace(aws_eks_cluster.main.identity[0].oidc[0].issuer, "https://", "")
}

resource "aws_eks_addon" "core" {
  for_each = toset(["vpc-cni", "kube-proxy", "coredns"])

  cluster_name                = aws_eks_cluster.main.name
  addon_name                  = each.key
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  # CoreDNS needs nodes to become active. Terraform orders by whole resource, so this
  # waits for every pool, the GPU one included.
  depends_on = [aws_eks_node_group.pool]
}

# ---- nodes -----------------------------------------------------------------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name}-eks-node"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.key}"
}

# The managed node groups, by name; each node carries the label vae.dev/pool=<name>.
locals {
  node_pools = {
    general = {
      ami_type       = "AL2023_x86_64_STANDARD"
      capacity_type  = "ON_DEMAND"
      instance_types = var.general_instance_types
      disk_size      = 50
      scaling        = var.general_node_count
      taints         = []
    }
    gpu = {
      ami_type       = var.gpu_ami_type
      capacity_type  = var.gpu_capacity_type
      instance_types = var.gpu_instance_types
      disk_size      = 100
      scaling        = var.gpu_node_count
      # Only pods that tolerate it (the workers) land on GPU nodes.
      taints = [{ key = "nvidia.com/gpu", value = "true", effect = "NO_SCHEDULE" }]
    }
  }
}

resource "aws_eks_node_group" "pool" {
  for_each = local.node_pools

  cluster_name    = aws_eks_cluster.main.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = aws_subnet.private[*].id
  ami_type        = each.value.ami_type
  capacity_type   = each.value.capacity_type
  instance_types  = each.value.instance_types
  disk_size       = each.value.disk_size

  scaling_config {
    desired_size = each.value.scaling.desired
    min_size     = each.value.scaling.min
    max_size     = each.value.scaling.max
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "vae.dev/pool" = each.key
  }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  # The cluster autoscaler changes desired_size; Terraform must not undo it.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# The addresses from before the for_each: existing state moves, nothing is recreated.
moved {
  from = aws_eks_node_group.general
  to   = aws_eks_node_group.pool["general"]
}

moved {
  from = aws_eks_node_group.gpu
  to   = aws_eks_node_group.pool["gpu"]
}

# Lets the cluster autoscaler scale the GPU group up from zero nodes: it learns the label,
# taint and GPU count of a node it has not seen yet from tags on the group's Auto Scaling
# group (EKS does not copy node group tags there).
locals {
  gpu_asg_template_tags = {
    "k8s.io/cluster-autoscaler/node-template/label/vae.dev/pool"       = "gpu"
    "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"     = "true:NoSchedule"
    "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu" = "1"
  }
}

resource "aws_autoscaling_group_tag" "gpu_template" {
  for_each = local.gpu_asg_template_tags

  autoscaling_group_name = aws_eks_node_group.pool["gpu"].resources[0].autoscaling_groups[0].name

  tag {
    key                 = each.key
    value               = each.value
    propagate_at_launch = false
  }
}
