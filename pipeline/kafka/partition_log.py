"""One partition of a topic read like a file: its records from an offset, in order.

The gateway reads an event's frames back from vae.frames with it (the log is the
recording). It blocks: run it on a thread, never on the event loop. No consumer group: the
partition is assigned at an explicit offset, nothing is committed.

What the embedded broker (Tansu) does shapes it: its ListOffsets(LATEST) answers the base
offset of the last record batch + 1, so the end of the log is taken from the fetches
(``enable.partition.eof``), never from the high watermark; ListOffsets by timestamp answers
offset 0 for any time, so positions are found by walking offsets, not by time; it keeps
every record (no retention) and answers a fetch past the end with nothing, where Kafka
answers OFFSET_OUT_OF_RANGE (``auto.offset.reset=error`` makes that an error here, not a
silent jump to another offset).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import Consumer, KafkaError, TopicPartition

from pipeline.config import KafkaSettings
from pipeline.kafka.clients import tail_config

POLL_S = 0.2
BATCH = 256


class LogError(RuntimeError):
    """The broker could not be read (unreachable, or an error other than those below)."""


class OffsetOutOfRange(LogError):
    """The offset is not in the partition: before its start (deleted by retention) or after
    its end (the topic was deleted and created again)."""


class ReadTimeout(LogError):
    """The deadline passed before the read was done."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    offset: int
    timestamp_ms: int  # the record's timestamp (the producer's create time)
    key: bytes | None
    value: bytes


class PartitionLog:
    """Reads one partition; a context manager that closes its consumer."""

    def __init__(self, kafka: KafkaSettings, topic: str, partition: int) -> None:
        conf = tail_config(kafka, "media")
        conf.update({"enable.partition.eof": True, "auto.offset.reset": "error"})
        self.topic = topic
        self.partition = partition
        self._consumer = Consumer(conf)

    def __enter__(self) -> PartitionLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()

    def bounds(self, timeout: float = 5.0) -> tuple[int, int]:
        """The first offset the partition still holds (retention moves it forward) and the
        high watermark (Tansu's may lag the last batch: see above)."""
        try:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, self.partition), timeout=timeout, cached=False
            )
        except Exception as exc:  # KafkaException: the broker did not answer
            raise LogError(f"{self.topic}[{self.partition}]: no watermark offsets: {exc}") from exc
        return int(low), int(high)

    def read(self, start: int, deadline: float, stop: int | None = None) -> Iterator[LogRecord]:
        """Records from ``start`` in offset order, up to ``stop`` (excluded) or the end of the
        partition, whichever comes first; ReadTimeout once ``deadline`` (time.monotonic())
        passes. The caller may stop iterating at any record."""
        if stop is not None and stop <= start:
            return
        self._consumer.assign([TopicPartition(self.topic, self.partition, start)])
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReadTimeout(f"{self.topic}[{self.partition}] from offset {start}")
                first = self._consumer.poll(min(POLL_S, left))
                if first is None:
                    continue
                for message in [first, *self._consumer.consume(num_messages=BATCH, timeout=0)]:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            return
                        if error.code() in (
                            KafkaError.OFFSET_OUT_OF_RANGE,
                            KafkaError._AUTO_OFFSET_RESET,
                        ):
                            raise OffsetOutOfRange(
                                f"{self.topic}[{self.partition}]: offset {start}: {error.str()}"
                            )
                        raise LogError(f"{self.topic}[{self.partition}]: {error.str()}")
                    offset = message.offset() or 0  # set on every record (None on events)
                    if stop is not None and offset >= stop:
                        return
                    _, timestamp_ms = message.timestamp()
                    yield LogRecord(
                        offset, int(timestamp_ms), message.key(), message.value() or b""
                    )
        finally:
            self._consumer.unassign()
