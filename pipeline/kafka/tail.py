"""Follow every partition of some topics from their ends, outside any consumer group.

Each gateway replica must see *all* detections to fan them out to its own subscribers,
so it assigns itself every partition instead of joining a group (no rebalance wait, no
committed offsets: a live feed starts at "now"). The consumer runs on its own thread;
``handle`` turns raw messages into whatever the loop needs, off the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

from pipeline.config import KafkaSettings
from pipeline.kafka.clients import tail_config

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Follow(Generic[T]):
    """One topic a tail follows: how its messages are handled (on the tail's thread) and
    where the handled batches go."""

    topic: str
    handle: Callable[[bytes | None, bytes], T | None]
    deliver: Callable[[list[T]], None]
    from_start: bool = False


class Tail:
    """A thread that reads new messages of one or more topics with a single consumer.

    One consumer for several topics means one fetch request covers them all: a gateway
    following detections, tracks, events, counts and rules pays one client's threads and
    one stream of fetches (the broker answers each), not five.
    """

    def __init__(
        self, kafka: KafkaSettings, follows: Sequence[Follow[Any]], *, refresh_s: float = 30.0
    ) -> None:
        self._consumer = Consumer(tail_config(kafka))
        self._follows = {f.topic: f for f in follows}
        self._refresh_s = refresh_s
        self._assigned: dict[str, set[int]] = {f.topic: set() for f in follows}
        self._stop = threading.Event()
        self.ready = threading.Event()  # every topic's partitions are followed
        self.errors = 0
        name = "tail-" + "+".join(self._follows)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _assign_new_partitions(self) -> None:
        """Assign partitions not yet followed, each at its current end (explicit offsets),
        or at its start with ``from_start`` (a small topic whose history the reader needs).
        Raises when a topic is missing, after assigning the others."""
        missing = []
        for topic, follow in self._follows.items():
            metadata = self._consumer.list_topics(topic, timeout=5.0)
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                missing.append(topic)
                continue
            new = sorted(set(found.partitions) - self._assigned[topic])
            if not new:
                continue
            starts = []
            for partition in new:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=5.0
                )
                starts.append(TopicPartition(topic, partition, low if follow.from_start else high))
            self._consumer.incremental_assign(starts)
            self._assigned[topic].update(new)
            where = "starts" if follow.from_start else "ends"
            log.info("following %s partitions %s from their %s", topic, new, where)
        if missing:
            raise KafkaException(f"topic {', '.join(missing)} not found")

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
                    log.warning("cannot follow %s yet: %s", ", ".join(self._follows), exc)
                    next_refresh = now + 1.0
            if not any(self._assigned.values()):
                self._stop.wait(0.2)
                continue
            # Await the first message alone: a batch consume waits its whole timeout.
            first = self._consumer.poll(0.1)
            if first is None:
                continue
            messages = [first, *self._consumer.consume(num_messages=499, timeout=0)]
            batches: dict[str, list[Any]] = {}
            for message in messages:
                topic = message.topic() or ""
                if message.error() is not None:
                    self.errors += 1
                    log.warning("tail of %s: %s", topic, message.error())
                    continue
                follow = self._follows.get(topic)
                if follow is None:
                    continue
                try:
                    handled = follow.handle(message.key(), message.value() or b"")
                except Exception:
                    self.errors += 1
                    log.exception("tail of %s: cannot handle a message", topic)
                    continue
                if handled is not None:
                    batches.setdefault(topic, []).append(handled)
            for topic, batch in batches.items():
                self._follows[topic].deliver(batch)
        self._consumer.close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


class TopicTail(Tail, Generic[T]):
    """A tail of one topic."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        handle: Callable[[bytes | None, bytes], T | None],
        deliver: Callable[[list[T]], None],
        *,
        refresh_s: float = 30.0,
        from_start: bool = False,
    ) -> None:
        super().__init__(kafka, [Follow(topic, handle, deliver, from_start)], refresh_s=refresh_s)
