"""Follow every partition of some topics from their ends (or starts, or last N records),
outside any consumer group; and read a topic's newest record (``last_value``).

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

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from pipeline.config import KafkaSettings
from pipeline.kafka.clients import tail_config

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Follow(Generic[T]):
    """One topic a tail follows: how its messages are handled (on the tail's thread) and
    where the handled batches go.

    ``from_start``: from each partition's start, or with ``last`` > 0 from that many records
    before its end (the history a reader can keep), instead of from its end. ``history``,
    when given, handles the records a partition already held when it was assigned (the
    catch-up), ``handle`` the ones that came after: one topic can fill an index from its
    recent past and feed a live socket from "now" with one consumer.
    """

    topic: str
    handle: Callable[[bytes | None, bytes], T | None]
    deliver: Callable[[list[T]], None]
    from_start: bool = False
    last: int = 0
    history: Callable[[bytes | None, bytes], T | None] | None = None


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
        # (topic, partition) -> the end it had when assigned, while records before it are
        # still being read (follows with a ``history`` handler only).
        self._live_from: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self.ready = threading.Event()  # every topic's partitions are followed
        self.errors = 0
        name = "tail-" + "+".join(self._follows)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _assign_new_partitions(self) -> None:
        """Assign partitions not yet followed, each at its current end (explicit offsets),
        or at its start with ``from_start`` (a small topic whose history the reader needs);
        with ``last`` too, no earlier than that many records before the end (the history
        the reader can keep: where the high watermark lags, as Tansu's does, a few more).
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
                start = high
                if follow.from_start:
                    start = max(low, high - follow.last) if follow.last > 0 else low
                if follow.history is not None and start < high:
                    self._live_from[(topic, partition)] = high
                starts.append(TopicPartition(topic, partition, start))
            self._consumer.incremental_assign(starts)
            self._assigned[topic].update(new)
            where = "ends"
            if follow.from_start:
                where = f"last {follow.last} records" if follow.last > 0 else "starts"
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
                handle = follow.handle
                if follow.history is not None and self._live_from:
                    handle = self._catching_up(follow, message)
                try:
                    handled = handle(message.key(), message.value() or b"")
                except Exception:
                    self.errors += 1
                    log.exception("tail of %s: cannot handle a message", topic)
                    continue
                if handled is not None:
                    batches.setdefault(topic, []).append(handled)
            for topic, batch in batches.items():
                self._follows[topic].deliver(batch)
        self._consumer.close()

    def _catching_up(
        self, follow: Follow[Any], message: Message
    ) -> Callable[[bytes | None, bytes], Any]:
        """``follow.history`` for a record its partition held when assigned, else ``handle``."""
        where = (follow.topic, message.partition() or 0)
        live_from = self._live_from.get(where)
        if live_from is None:
            return follow.handle
        if (message.offset() or 0) < live_from and follow.history is not None:
            return follow.history
        del self._live_from[where]  # caught up: every later record of it is new
        return follow.handle

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
        last: int = 0,
    ) -> None:
        follow = Follow(topic, handle, deliver, from_start, last)
        super().__init__(kafka, [follow], refresh_s=refresh_s)


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
