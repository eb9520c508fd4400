variable "region" {
  description = "AWS region for every resource (EKS, MSK, ECR, VPC)."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Prefix of every resource name: EKS cluster, MSK cluster, IAM roles, ECR repositories (<name>/gateway, ...). CI's ECR_REPO_PREFIX secret must equal it."
  type        = string
  default     = "vae"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

# ---- network -------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC; split into 3 public and 3 private subnets, one of each per AZ."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = true
}

# ---- EKS -----------------------------------------------------------------------------

variable "kubernetes_version" {
  description = "EKS Kubernetes version. The manifests in deploy/k8s are validated against this version's schemas."
  type        = string
  default     = "1.33"
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint (narrow this to your office or CI egress)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "general_instance_types" {
  description = "Instance types of the general node group (gateway, KEDA, load balancer controller, Prometheus)."
  type        = list(string)
  default     = ["m7i.xlarge"]
}

variable "general_node_count" {
  description = "Desired, minimum and maximum size of the general node group."
  type = object({
    desired = number
    min     = number
    max     = number
  })
  default = { desired = 2, min = 2, max = 6 }
}

variable "gpu_instance_types" {
  description = "Instance types of the GPU node group (one NVIDIA GPU each: g6.xlarge has an L4, g5.xlarge an A10G)."
  type        = list(string)
  default     = ["g6.xlarge"]
}

variable "gpu_ami_type" {
  description = "AMI of the GPU nodes. BOTTLEROCKET_x86_64_NVIDIA ships the NVIDIA driver and device plugin; AL2023_x86_64_NVIDIA ships the driver only, so the NVIDIA device plugin must be installed (terraform/README.md)."
  type        = string
  default     = "BOTTLEROCKET_x86_64_NVIDIA"

  validation {
    condition     = contains(["BOTTLEROCKET_x86_64_NVIDIA", "AL2023_x86_64_NVIDIA"], var.gpu_ami_type)
    error_message = "gpu_ami_type must be BOTTLEROCKET_x86_64_NVIDIA or AL2023_x86_64_NVIDIA."
  }
}

variable "gpu_node_count" {
  description = "Desired, minimum and maximum size of the GPU node group. Useful workers stop at the frames topic's partition count (12), one GPU each."
  type = object({
    desired = number
    min     = number
    max     = number
  })
  default = { desired = 1, min = 1, max = 12 }
}

variable "gpu_capacity_type" {
  description = "ON_DEMAND or SPOT for GPU nodes. Spot is cheaper; a reclaimed worker loses nothing (its partitions move, uncommitted frames are read again)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.gpu_capacity_type)
    error_message = "gpu_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of the engine (deploy/k8s/overlays/eks); the IAM roles trust its service accounts."
  type        = string
  default     = "vae"
}

# ---- MSK -----------------------------------------------------------------------------

variable "kafka_version" {
  description = "Apache Kafka version of the MSK cluster."
  type        = string
  default     = "3.8.x"
}

variable "msk_instance_type" {
  description = "MSK broker instance type. kafka.m7g.large carries on the order of 100 MB/s of frames across 3 brokers; size up for thousands of streams (terraform/README.md)."
  type        = string
  default     = "kafka.m7g.large"
}

variable "msk_volume_size_gb" {
  description = "EBS storage per broker in GiB. Frames are kept VAE_TOPICS_FRAMES_RETENTION_MS (1 h) times 3 replicas."
  type        = number
  default     = 500
}

variable "msk_message_max_bytes" {
  description = "message.max.bytes of the brokers: the largest record batch. Must exceed VAE_TOPICS_MAX_MESSAGE_BYTES (4 MiB by default, frames up to 2 MiB)."
  type        = number
  default     = 4194304
}

variable "msk_log_retention_hours" {
  description = "Broker default retention; the engine's topics set their own (frames 1 h, detections 24 h)."
  type        = number
  default     = 24
}

variable "frames_topic" {
  description = "Frames topic name (VAE_TOPICS_FRAMES): IAM policies grant access to it by name."
  type        = string
  default     = "vae.frames"
}

variable "detections_topic" {
  description = "Detections topic name (VAE_TOPICS_DETECTIONS)."
  type        = string
  default     = "vae.detections"
}

variable "analytics_topics" {
  description = "The analytics' topics (VAE_TOPICS_TRACKS, _EVENTS, _COUNTS, _RULES): IAM policies grant access to them by name."
  type        = list(string)
  default     = ["vae.tracks", "vae.events", "vae.counts", "vae.rules"]
}

variable "analytics_group" {
  description = "Consumer group and faust app id of the analytics workers (VAE_ANALYTICS_GROUP_ID); faust's own topics are named after it."
  type        = string
  default     = "vae-analytics"
}

variable "worker_group" {
  description = "Consumer group of the workers (VAE_WORKER_GROUP_ID)."
  type        = string
  default     = "vae-workers"
}

# ---- images and CI -------------------------------------------------------------------

variable "image_tag" {
  description = "Image tag written into the k8s_cluster_env output (CI deploys its commit SHA instead)."
  type        = string
  default     = "0.1.0"
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose Actions may push images and deploy (OIDC, no stored keys). Empty: no CI role."
  type        = string
  default     = ""
}
