"""Topic creation at start (never by auto-create) and broker reachability checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from pipeline.config import KafkaSettings
from pipeline.kafka.clients import common_config
from pipeline.topics import Topic

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """No broker answered at the configured bootstrap servers."""


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


def missing_topics(existing: Iterable[str], wanted: Iterable[Topic[Any]]) -> list[str]:
    """Names of the wanted topics that do not exist (for creation and readiness checks)."""
    have = set(existing)
    return [topic.name for topic in wanted if topic.name not in have]


def ensure_topics(
    kafka: KafkaSettings, topics: Sequence[Topic[Any]], timeout: float = 30.0
) -> dict[str, int]:
    """Create missing topics as declared; return every wanted topic's partition count."""
    admin = admin_client(kafka)
    existing = topic_partitions(admin, timeout=timeout)
    missing = [t for t in topics if t.name in missing_topics(existing, topics)]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(t.name, t.partitions, t.replication_factor, config=dict(t.config))
                for t in missing
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
            if not missing_topics(existing, topics):
                break
            time.sleep(0.1)
    for topic in topics:
        have = existing.get(topic.name)
        if have is None:
            raise BrokerUnavailable(f"topic {topic.name} was not created in {timeout:.0f} s")
        if have != topic.partitions:
            log.warning(
                "topic %s has %d partitions, settings ask for %d: kept as it is",
                topic.name,
                have,
                topic.partitions,
            )
    return {t.name: existing[t.name] for t in topics}


def group_lag(kafka: KafkaSettings, group: str, topic: str, partitions: int) -> int:
    """Records of a topic its consumer group has not committed yet, over all partitions:
    the high watermarks minus the committed positions (no group join). The embedded Tansu
    reports a high watermark short of the tail of a partition's last batch, so its lag
    reads a little low (a batch's worth at most)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**common_config(kafka, "lag"), "group.id": group})
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        ends = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in wanted)
        done = sum(max(tp.offset, 0) for tp in consumer.committed(wanted, timeout=10))
        return max(0, ends - done)
    finally:
        consumer.close()


def group_committed(kafka: KafkaSettings, group: str, topic: str, partitions: int) -> int:
    """Records of a topic a consumer group has committed, over all its partitions (an
    OffsetFetch: no group join). Lag = records produced minus this."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**common_config(kafka, "lag"), "group.id": group})
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(wanted, timeout=10))
    finally:
        consumer.close()
