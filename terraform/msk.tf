# Amazon MSK: 3 brokers, one per AZ, TLS in transit, IAM authentication only (no
# unauthenticated or plaintext listener). Clients connect on 9098 (SASL/IAM over TLS).

resource "aws_security_group" "msk" {
  name        = "${var.name}-msk"
  description = "MSK brokers: Kafka over TLS with IAM auth from inside the VPC"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${var.name}-msk" }
}

resource "aws_vpc_security_group_ingress_rule" "msk_iam" {
  security_group_id = aws_security_group.msk.id
  description       = "Kafka SASL/IAM over TLS from pods and nodes (VPC CNI gives pods VPC addresses)"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 9098
  to_port           = 9098
}

resource "aws_vpc_security_group_egress_rule" "msk_all" {
  security_group_id = aws_security_group.msk.id
  description       = "Replies and broker-to-broker traffic"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_msk_configuration" "main" {
  name           = "${var.name}-frames"
  kafka_versions = [var.kafka_version]
  description    = "Sized for JPEG frames: records up to message.max.bytes, short default retention, no auto-created topics."

  # replica.fetch.max.bytes >= message.max.bytes, or followers could not copy the largest
  # frames. Topics are created explicitly by the vae-topics Job (partitions, retention).
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    num.partitions=12
    message.max.bytes=${var.msk_message_max_bytes}
    replica.fetch.max.bytes=${var.msk_message_max_bytes}
    log.retention.hours=${var.msk_log_retention_hours}
    unclean.leader.election.enable=false
    delete.topic.enable=true
  PROPERTIES
}

resource "aws_cloudwatch_log_group" "msk" {
  name              = "/aws/msk/${var.name}"
  retention_in_days = 14
}

resource "aws_msk_cluster" "main" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = 3

  broker_node_group_info {
    instance_type   = var.msk_instance_type
    client_subnets  = aws_subnet.private[*].id
    security_groups = [aws_security_group.msk.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.msk_volume_size_gb
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.main.arn
    revision = aws_msk_configuration.main.latest_revision
  }

  client_authentication {
    unauthenticated = false
    sasl {
      iam = true
    }
  }

  encryption_info {
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  # Broker and JMX metrics for Prometheus (ports 11001/11002 inside the VPC).
  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.msk.name
      }
    }
  }
}
