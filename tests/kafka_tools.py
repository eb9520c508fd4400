"""What tests do straight on the broker: write records, read whole topics, committed offsets."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from pipeline.config import KafkaSettings
from pipeline.kafka.clients import producer_config, tail_config
from pipeline.kafka.group import RawMessage
from pipeline.kafka.producer import CallbackProducer
from pipeline.serde import FrameRecord, frame_record

Record = RawMessage  # where it was and its bytes


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
            records.append(Record.of(message))
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
    """Each partition's high watermark: the offset the next record will get.

    The embedded Tansu (0.6.0) reports one past the *first* record of a partition's last
    batch, so a batch of several records leaves its others above it: ``read_to_end`` reads
    past it.
    """
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
    """Every record of ``topic`` up to its ends when called, at least: past the high
    watermarks, what else arrives in the 0.5 s after they are reached."""
    ends = end_offsets(kafka, topic)
    total = sum(ends.values())  # every partition starts at offset 0 here (nothing deleted)
    reached_at: list[float] = []

    def reached(records: list[Record]) -> bool:
        if not reached_at:
            if len([r for r in records if r.offset < ends[r.partition]]) < total:
                return False
            reached_at.append(time.monotonic())
        return time.monotonic() - reached_at[0] >= 0.5

    return read_topic(kafka, topic, reached, timeout)


def produce(kafka: KafkaSettings, topic: str, key: str, values: list[bytes]) -> None:
    """Write records straight into a topic, in order, and wait until the broker has them."""
    producer = CallbackProducer(
        producer_config(kafka, "test", linger_ms=0, max_message_bytes=4_194_304)
    )
    errors: list[str] = []
    for value in values:
        producer.produce(topic, key.encode(), value, lambda e: errors.append(e) if e else None)
    assert producer.close(10) == 0 and not errors, errors


def frame(stream_id: str, frame_id: int, image: bytes, age_s: float = 0.0) -> FrameRecord:
    """A frame record as the gateway would write it, received ``age_s`` ago."""
    now = time.time_ns() // 1000 - int(age_s * 1e6)
    return frame_record(
        stream_id=stream_id,
        frame_id=frame_id,
        capture_ts_us=now,
        gateway_ts_us=now,
        width=768,
        height=576,
        image=image,
    )
