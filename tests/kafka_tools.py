"""What tests read straight from the broker: whole topics from the start, committed offsets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from pipeline.config import KafkaSettings
from pipeline.kafka.clients import tail_config


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def read_topic(
    kafka: KafkaSettings,
    topic: str,
    done: Callable[[list[Record]], bool],
    timeout: float = 60.0,
) -> list[Record]:
    """Every record of ``topic`` from its start, read until ``done(records)`` or the timeout."""
    consumer = Consumer(tail_config(kafka, "test-reader"))
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while not done(records) and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            records.append(
                Record(
                    message.partition() or 0,
                    message.offset() or 0,
                    message.key(),
                    message.value() or b"",
                )
            )
        return records
    finally:
        consumer.close()


def committed(kafka: KafkaSettings, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed position of each partition (negative when none)."""
    conf = tail_config(kafka, "test-offsets")
    conf["group.id"] = group
    consumer = Consumer(conf)
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """Each partition's high watermark: the offset the next record will get."""
    consumer = Consumer(tail_config(kafka, "test-ends"))
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def read_to_end(kafka: KafkaSettings, topic: str, timeout: float = 60.0) -> list[Record]:
    """Every record of ``topic`` up to the ends it had when called."""
    ends = end_offsets(kafka, topic)
    total = sum(ends.values())  # every partition starts at offset 0 here (nothing deleted)

    def reached(records: list[Record]) -> bool:
        return len([r for r in records if r.offset < ends[r.partition]]) >= total

    records = read_topic(kafka, topic, reached, timeout)
    return [r for r in records if r.offset < ends[r.partition]]
