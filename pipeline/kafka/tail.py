"""Follow every partition of a topic from its end, outside any consumer group.

Each gateway replica must see *all* detections to fan them out to its own subscribers,
so it assigns itself every partition instead of joining a group (no rebalance wait, no
committed offsets: a live feed starts at "now"). The consumer runs on its own thread;
``handle`` turns raw messages into whatever the loop needs, off the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

from pipeline.config import KafkaSettings
from pipeline.kafka.clients import tail_config

log = logging.getLogger(__name__)
T = TypeVar("T")


class TopicTail(Generic[T]):
    """A thread that reads a topic's new messages and passes handled batches to ``deliver``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        handle: Callable[[bytes | None, bytes], T | None],
        deliver: Callable[[list[T]], None],
        *,
        refresh_s: float = 30.0,
        from_start: bool = False,
        last: int = 0,
    ) -> None:
        self._consumer = Consumer(tail_config(kafka))
        self._topic = topic
        self._handle = handle
        self._deliver = deliver
        self._refresh_s = refresh_s
        self._from_start = from_start
        self._last = last
        self._assigned: set[int] = set()
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=f"tail-{topic}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _assign_new_partitions(self) -> None:
        """Assign partitions not yet followed, each at its current end (explicit offsets),
        or at its start with ``from_start`` (a small topic whose history the reader needs);
        with ``last`` too, no earlier than that many records before the end (the history
        the reader can keep: where the high watermark lags, as Tansu's does, a few more)."""
        metadata = self._consumer.list_topics(self._topic, timeout=5.0)
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            raise KafkaException(f"topic {self._topic} not found")
        new = sorted(set(topic.partitions) - self._assigned)
        if not new:
            return
        starts = []
        for partition in new:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self._topic, partition), timeout=5.0
            )
            start = high
            if self._from_start:
                start = max(low, high - self._last) if self._last > 0 else low
            starts.append(TopicPartition(self._topic, partition, start))
        self._consumer.incremental_assign(starts)
        self._assigned.update(new)
        where = "starts" if self._from_start else "ends"
        log.info("following %s partitions %s from their %s", self._topic, new, where)

    def _run(self) -> None:
        next_refresh = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_refresh:
                try:
                    self._assign_new_partitions()
                    self.ready.set()
                    next_refresh = now + self._refresh_s
                except KafkaException as exc:
                    log.warning("cannot follow %s yet: %s", self._topic, exc)
                    next_refresh = now + 1.0
            if not self._assigned:
                self._stop.wait(0.2)
                continue
            # Await the first message alone: a batch consume waits its whole timeout.
            first = self._consumer.poll(0.1)
            if first is None:
                continue
            messages = [first, *self._consumer.consume(num_messages=499, timeout=0)]
            batch: list[T] = []
            for message in messages:
                if message.error() is not None:
                    self.errors += 1
                    log.warning("tail of %s: %s", self._topic, message.error())
                    continue
                try:
                    handled = self._handle(message.key(), message.value() or b"")
                except Exception:
                    self.errors += 1
                    log.exception("tail of %s: cannot handle a message", self._topic)
                    continue
                if handled is not None:
                    batch.append(handled)
            if batch:
                self._deliver(batch)
        self._consumer.close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


class TopicUnreadable(RuntimeError):
    """A topic's records could not be read (no such topic, no broker, a timeout)."""


def last_value(kafka: KafkaSettings, topic: str, timeout: float = 10.0) -> bytes | None:
    """The value of a topic's newest record (over its partitions, by timestamp), or None
    when it holds none; TopicUnreadable when it cannot tell. Blocking: for a small topic
    such as the rules, read at start."""
    try:
        return _last_value(kafka, topic, timeout)
    except KafkaException as exc:
        raise TopicUnreadable(str(exc)) from exc


def _last_value(kafka: KafkaSettings, topic: str, timeout: float) -> bytes | None:
    consumer = Consumer(tail_config(kafka, "last"))
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise KafkaException(f"topic {topic} not found")
        wanted = []
        for partition in sorted(found.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            if high > low:
                wanted.append(TopicPartition(topic, partition, high - 1))
        if not wanted:
            return None
        consumer.assign(wanted)
        newest: tuple[int, bytes] | None = None
        waiting = {tp.partition for tp in wanted}
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            waiting.discard(message.partition())
            stamp = message.timestamp()[1]
            if newest is None or stamp >= newest[0]:
                newest = (stamp, message.value() or b"")
        if waiting:
            raise KafkaException(f"the last records of {topic} were not read in {timeout:.0f} s")
        return None if newest is None else newest[1]
    finally:
        consumer.close()
