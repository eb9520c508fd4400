"""Topic creation at start (never by auto-create) and broker reachability checks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from pipeline.config import KafkaSettings, TopicSettings
from pipeline.kafka.clients import common_config

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """No broker answered at the configured bootstrap servers."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the engine wants it."""

    name: str
    partitions: int
    config: dict[str, str]


def wanted_topics(topics: TopicSettings) -> list[TopicSpec]:
    """The frames and detections topics with their partition counts and retention."""
    return [
        TopicSpec(
            topics.frames,
            topics.frames_partitions,
            {
                "retention.ms": str(topics.frames_retention_ms),
                "max.message.bytes": str(topics.max_message_bytes),
                "cleanup.policy": "delete",
            },
        ),
        TopicSpec(
            topics.detections,
            topics.detections_partitions,
            {"retention.ms": str(topics.detections_retention_ms), "cleanup.policy": "delete"},
        ),
    ]


def admin_client(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(common_config(kafka, "admin"))


def topic_partitions(admin: AdminClient, timeout: float = 5.0) -> dict[str, int]:
    """Existing topics and their partition counts; BrokerUnavailable when none answers."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(f"no broker answered within {timeout:.0f} s: {exc}") from exc
    return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}


def wait_for_broker(kafka: KafkaSettings, timeout: float = 30.0) -> None:
    """Block until the brokers answer a metadata request, or raise BrokerUnavailable."""
    admin = admin_client(kafka)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            topic_partitions(admin, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            return
        except BrokerUnavailable as exc:
            last = exc
            time.sleep(0.2)
    raise BrokerUnavailable(
        f"no Kafka broker at {common_config(kafka, 'admin')['bootstrap.servers']} after "
        f"{timeout:.0f} s ({last}); start one with `vae broker` or set VAE_KAFKA_BOOTSTRAP"
    )


def ensure_topics(
    kafka: KafkaSettings, topics: TopicSettings, timeout: float = 30.0
) -> dict[str, int]:
    """Create missing topics with the configured partitions; return every topic's count."""
    admin = admin_client(kafka)
    existing = topic_partitions(admin, timeout=timeout)
    specs = wanted_topics(topics)
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, topics.replication_factor, config=s.config)
                for s in missing
            ],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
                log.info("created topic %s", name)
            except KafkaException as exc:
                # Another process may have created it between our check and our request.
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            existing = topic_partitions(admin, timeout=timeout)
            if all(s.name in existing for s in specs):
                break
            time.sleep(0.1)
    for spec in specs:
        have = existing.get(spec.name)
        if have is None:
            raise BrokerUnavailable(f"topic {spec.name} was not created in {timeout:.0f} s")
        if have != spec.partitions:
            log.warning(
                "topic %s has %d partitions, settings ask for %d: kept as it is",
                spec.name,
                have,
                spec.partitions,
            )
    return {s.name: existing[s.name] for s in specs}


def missing_topics(admin: AdminClient, topics: TopicSettings, timeout: float = 2.0) -> list[str]:
    """Which of the engine's topics do not exist (for readiness checks)."""
    existing = topic_partitions(admin, timeout=timeout)
    return [s.name for s in wanted_topics(topics) if s.name not in existing]
