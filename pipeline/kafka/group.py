"""A consumer-group member with offsets stored by the application, not by librdkafka.

``enable.auto.offset.store=false``: librdkafka auto-commits only the positions the
application stored, and the application stores a position only once everything below
it was processed. Rebalance callbacks run on the thread that polls.

A member whose process was stopped (SIGSTOP, a frozen VM) for longer than its session
timeout has been expelled by the group, but finds out only a moment after it runs again,
and meanwhile would fetch and process records of partitions that already belong to
another member. So a gap between polls longer than the session timeout suspends fetching
until the group has spoken (a rebalance callback: the partitions lost, or kept) or for one
session timeout at most; nothing is stored for the auto-commit meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from pipeline.kafka.member import ConsumerFailed, Member

log = logging.getLogger(__name__)

PartitionsCallback = Callable[[list[int]], None]


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A record as read: where it was and its bytes."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes

    @classmethod
    def of(cls, message: Message) -> RawMessage:
        return cls(
            message.partition() or 0, message.offset() or 0, message.key(), message.value() or b""
        )


MAX_POLL = "max.poll.interval.ms"


class GroupConsumer(Member):
    """Subscribes one topic in a group; the owner reacts to assignments and stores offsets."""

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        *,
        on_assign: PartitionsCallback,
        on_revoke: PartitionsCallback,
        on_lost: PartitionsCallback,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__(config, on_stats)
        self.topic = topic
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost
        self._held: set[int] = set()  # paused one by one, whatever pause()/resume() do
        self._stall_s = (
            min(int(config.get("session.timeout.ms", 45_000)), int(config.get(MAX_POLL, 300_000)))
            / 1000.0
        )
        self._last_poll: float | None = None
        self._suspended_until: float | None = None  # monotonic; set after a stall
        self._unstored: dict[int, int] = {}  # positions held back while suspended
        self._rebalances = 0  # rebalance callbacks served: the group speaking
        self._owned: set[int] = set()  # as of the last rebalance callback
        self._consumer.subscribe(
            [topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalances += 1
        self.joined = True
        numbers = [tp.partition for tp in partitions]
        self._owned.update(numbers)
        log.info("assigned %s partitions %s", self.topic, numbers)
        self._on_assign(numbers)
        if self._paused and partitions:
            self._consumer.pause(partitions)
        self._end_suspension("a new assignment")

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._gone(partitions, "revoked", self._on_revoke)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._gone(partitions, "lost", self._on_lost)

    def _gone(self, partitions: list[TopicPartition], how: str, then: PartitionsCallback) -> None:
        self._rebalances += 1
        numbers = [tp.partition for tp in partitions]
        self._held.difference_update(numbers)
        self._owned.difference_update(numbers)
        if how == "lost":
            log.warning("lost %s partitions %s (session timed out?)", self.topic, numbers)
        else:
            log.info("%s %s partitions %s", how, self.topic, numbers)
        then(numbers)
        self._end_suspension(f"partitions {how}", gone=numbers)

    # --- after a stall -----------------------------------------------------------------

    def _suspend(self, stalled_s: float, fetched: list[Any]) -> None:
        """Stop fetching until the group speaks; records fetched meanwhile are read again
        (from the first of each partition) should the partitions turn out to be kept."""
        if self._suspended_until is None:
            log.warning(
                "no poll for %.1f s (> %.1f s, the session timeout or the poll interval): the "
                "group may have moved this member's partitions on; not fetching until it says",
                stalled_s,
                self._stall_s,
            )
            self._consumer.pause(self._consumer.assignment())
        self._suspended_until = time.monotonic() + self._stall_s
        first: dict[int, int] = {}
        for message in fetched:
            if message.error() is None:
                partition, offset = message.partition() or 0, message.offset() or 0
                first[partition] = min(offset, first.get(partition, offset))
        for partition, offset in first.items():
            try:
                self._consumer.seek(TopicPartition(self.topic, partition, offset))
            except KafkaException as exc:  # not assigned any more
                log.debug("seek %d@%d: %s", offset, partition, exc)

    def _end_suspension(self, why: str, gone: list[int] | None = None) -> None:
        if self._suspended_until is None:
            return
        self._suspended_until = None
        for partition in gone or ():
            self._unstored.pop(partition, None)
        log.info("fetching again after the stall: %s", why)
        if not self._paused:
            kept = [tp for tp in self._consumer.assignment() if tp.partition not in self._held]
            if kept:
                self._consumer.resume(kept)
        unstored, self._unstored = self._unstored, {}
        self.store(unstored)

    @property
    def suspended(self) -> bool:
        return self._suspended_until is not None

    def poll(self, max_messages: int, timeout: float) -> list[RawMessage]:
        """Up to ``max_messages`` records, waiting at most ``timeout`` seconds for the first
        (``Member._fetch``)."""
        if self.fatal:
            raise ConsumerFailed(self.fatal)
        started = time.monotonic()
        if self._last_poll is not None and started - self._last_poll > self._stall_s:
            self._suspend(started - self._last_poll, [])
        elif self._suspended_until is not None and started >= self._suspended_until:
            self._end_suspension("no rebalance followed: the partitions are still ours")
        rebalances = self._rebalances
        batch = self._fetch(max_messages, timeout)
        self._last_poll = time.monotonic()
        if self._last_poll - started > self._stall_s and rebalances == self._rebalances:
            # Stopped while in this poll, and the group has not spoken since.
            self._suspend(self._last_poll - started, batch)
            return []
        out = []
        for message in batch:
            if not self._readable(message):
                continue
            if rebalances != self._rebalances and message.partition() not in self._owned:
                # Returned by the first call of this poll, then its partition was revoked
                # in the second: it is its next owner's to read.
                continue
            out.append(RawMessage.of(message))
        return out

    def assignment(self) -> list[int]:
        return [tp.partition for tp in self._consumer.assignment()]

    def store(self, positions: dict[int, int]) -> None:
        """Mark positions (next offset to read, per partition) for the next auto-commit;
        after a stall, only once the group confirmed the partitions are still ours."""
        if not positions:
            return
        if self._suspended_until is not None:
            self._unstored.update(positions)
            return
        owned = set(self.assignment())
        offsets = [TopicPartition(self.topic, p, o) for p, o in positions.items() if p in owned]
        if offsets:
            try:
                self._consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:  # a partition revoked between check and store
                log.debug("store_offsets: %s", exc)

    def commit(self, positions: dict[int, int]) -> None:
        """Commit positions now and wait for the broker (used before giving partitions up).

        They are stored too: librdkafka auto-commits the stored positions of partitions it
        unassigns after the revoke callback, and an older stored one would overwrite these.
        """
        if not positions:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in positions.items()]
        try:
            self._consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:  # not assigned any more
            log.debug("store_offsets: %s", exc)
        try:
            answered = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit of %s failed: %s", positions, exc)
            return
        refused = {tp.partition: tp.error for tp in answered or () if tp.error is not None}
        if refused:
            log.warning("commit of %s refused for %s", positions, refused)
        else:
            log.info("committed %s", positions)

    def resume(self) -> None:
        """Resume every partition but the held ones (after a stall: once the group spoke)."""
        if self._paused:
            self._paused = False
            if self._suspended_until is not None:
                return
            kept = [tp for tp in self._consumer.assignment() if tp.partition not in self._held]
            if kept:
                self._consumer.resume(kept)

    def hold(self, partition: int, offset: int) -> None:
        """Stop reading a partition and go back to ``offset``: read again from there once
        released (records already fetched after it are dropped by librdkafka)."""
        tp = TopicPartition(self.topic, partition, offset)
        self._held.add(partition)
        self._consumer.pause([tp])
        try:
            self._consumer.seek(tp)
        except KafkaException as exc:  # not assigned any more: its next owner reads it
            log.debug("seek %s: %s", tp, exc)

    def release(self, partition: int) -> None:
        """Read a held partition again (from where ``hold`` left it)."""
        if partition in self._held:
            self._held.discard(partition)
            if not self._paused and self._suspended_until is None:
                self._consumer.resume([TopicPartition(self.topic, partition)])

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)
