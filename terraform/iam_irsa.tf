# IAM roles for service accounts (IRSA): each pod role gets exactly the Kafka actions it
# uses on the engine's topics and group, nothing more. MSK IAM ARNs name the cluster by
# name and UUID: topic/<cluster>/<uuid>/<topic>, group/<cluster>/<uuid>/<group>.

locals {
  msk_arn_base   = "arn:${local.partition}:kafka:${var.region}:${local.account_id}"
  msk_cluster_id = "${aws_msk_cluster.main.cluster_name}/${aws_msk_cluster.main.cluster_uuid}"
  frames_arn     = "${local.msk_arn_base}:topic/${local.msk_cluster_id}/${var.frames_topic}"
  detections_arn = "${local.msk_arn_base}:topic/${local.msk_cluster_id}/${var.detections_topic}"
  group_arn      = "${local.msk_arn_base}:group/${local.msk_cluster_id}"
  # tracks, events, counts, rules (in that order, as var.analytics_topics lists them)
  analytics_arns = [for t in var.analytics_topics : "${local.msk_arn_base}:topic/${local.msk_cluster_id}/${t}"]
  tracks_arn     = local.analytics_arns[0]
  events_arn     = local.analytics_arns[1]
  counts_arn     = local.analytics_arns[2]
  rules_arn      = local.analytics_arns[3]
  # faust's own topics: <group>-<table>-changelog and <group>-__assignor-__leader.
  faust_arn = "${local.msk_arn_base}:topic/${local.msk_cluster_id}/${var.analytics_group}-*"

  # Kubernetes service account -> role name suffix.
  pod_roles = {
    gateway   = "${var.k8s_namespace}:vae-gateway"
    worker    = "${var.k8s_namespace}:vae-worker"
    analytics = "${var.k8s_namespace}:vae-analytics"
    topics    = "${var.k8s_namespace}:vae-topics"
    # Installed by Helm (terraform/README.md); names are the charts' defaults.
    keda-operator                = "keda:keda-operator"
    aws-load-balancer-controller = "kube-system:aws-load-balancer-controller"
    cluster-autoscaler           = "kube-system:cluster-autoscaler"
  }
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.pod_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:sub"
      values   = ["system:serviceaccount:${each.value}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "pod" {
  for_each = local.pod_roles

  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
}

# ---- the engine's roles ------------------------------------------------------------------

# Both services connect and produce idempotently (enable.idempotence=true).
data "aws_iam_policy_document" "idempotent_producer" {
  statement {
    sid = "Cluster"
    actions = [
      "kafka-cluster:Connect",
      "kafka-cluster:DescribeCluster",
      "kafka-cluster:WriteDataIdempotently",
    ]
    resources = [aws_msk_cluster.main.arn]
  }
}

data "aws_iam_policy_document" "gateway" {
  source_policy_documents = [data.aws_iam_policy_document.idempotent_producer.json]
  statement {
    sid       = "ProduceFrames"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = [local.frames_arn]
  }
  statement {
    sid       = "FollowDetections"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [local.detections_arn]
  }
  statement {
    sid       = "FollowAnalytics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = local.analytics_arns
  }
  statement {
    sid       = "SaveRules"
    actions   = ["kafka-cluster:WriteData"]
    resources = [local.rules_arn]
  }
  # The detections tail assigns partitions under a throwaway group id (vae-tail-*) and
  # never commits; librdkafka may still look the group's coordinator up.
  statement {
    sid       = "TailGroup"
    actions   = ["kafka-cluster:DescribeGroup"]
    resources = ["${local.group_arn}/vae-tail-*"]
  }
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.idempotent_producer.json]
  statement {
    sid       = "ConsumeFrames"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [local.frames_arn]
  }
  statement {
    sid       = "ProduceDetections"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = [local.detections_arn]
  }
  statement {
    sid       = "ConsumerGroup"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = ["${local.group_arn}/${var.worker_group}"]
  }
}

data "aws_iam_policy_document" "analytics" {
  source_policy_documents = [data.aws_iam_policy_document.idempotent_producer.json]
  statement {
    sid       = "ConsumeDetectionsAndRules"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [local.detections_arn, local.rules_arn]
  }
  # The rules: a rules file's, published when they are the latest (README: Analytics).
  statement {
    sid       = "ProduceResults"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = [local.tracks_arn, local.events_arn, local.counts_arn, local.rules_arn]
  }
  # faust creates, reads and writes its changelog and leader topics itself.
  statement {
    sid = "FaustTopics"
    actions = [
      "kafka-cluster:CreateTopic",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:DescribeTopicDynamicConfiguration",
      "kafka-cluster:ReadData",
      "kafka-cluster:WriteData",
    ]
    resources = [local.faust_arn]
  }
  statement {
    sid       = "ConsumerGroup"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = ["${local.group_arn}/${var.analytics_group}", "${local.group_arn}/vae-tail-*"]
  }
}

data "aws_iam_policy_document" "topics" {
  statement {
    sid       = "Cluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [aws_msk_cluster.main.arn]
  }
  statement {
    sid = "CreateTopics"
    actions = [
      "kafka-cluster:CreateTopic",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:DescribeTopicDynamicConfiguration",
    ]
    resources = concat([local.frames_arn, local.detections_arn], local.analytics_arns)
  }
}

# KEDA reads the workers' committed offsets and the topic's end offsets: describe only.
data "aws_iam_policy_document" "keda_operator" {
  statement {
    sid       = "Cluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [aws_msk_cluster.main.arn]
  }
  statement {
    sid       = "Lag"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:DescribeGroup"]
    resources = [local.frames_arn, "${local.group_arn}/${var.worker_group}"]
  }
}

# The Kafka policy of each role above that uses MSK, by local.pod_roles key (the add-on
# roles' policies are in iam_cluster_addons.tf).
locals {
  pod_policies = {
    gateway       = { name = "msk", json = data.aws_iam_policy_document.gateway.json }
    worker        = { name = "msk", json = data.aws_iam_policy_document.worker.json }
    analytics     = { name = "msk", json = data.aws_iam_policy_document.analytics.json }
    topics        = { name = "msk", json = data.aws_iam_policy_document.topics.json }
    keda-operator = { name = "msk-lag", json = data.aws_iam_policy_document.keda_operator.json }
  }
}

resource "aws_iam_role_policy" "pod" {
  for_each = local.pod_policies

  name   = each.value.name
  role   = aws_iam_role.pod[each.key].id
  policy = each.value.json
}

# The addresses from before the for_each: existing state moves, nothing is recreated.
moved {
  from = aws_iam_role_policy.gateway
  to   = aws_iam_role_policy.pod["gateway"]
}

moved {
  from = aws_iam_role_policy.worker
  to   = aws_iam_role_policy.pod["worker"]
}

moved {
  from = aws_iam_role_policy.analytics
  to   = aws_iam_role_policy.pod["analytics"]
}

moved {
  from = aws_iam_role_policy.topics
  to   = aws_iam_role_policy.pod["topics"]
}

moved {
  from = aws_iam_role_policy.keda_operator
  to   = aws_iam_role_policy.pod["keda-operator"]
}
