"""Every Kafka client and its configuration lives here; nothing else imports confluent_kafka
(import-linter holds that: see pyproject.toml)."""

from pipeline.kafka.clients import DEFAULT_BOOTSTRAP, bootstrap_of, consumer_config, producer_config

__all__ = ["DEFAULT_BOOTSTRAP", "bootstrap_of", "consumer_config", "producer_config"]
