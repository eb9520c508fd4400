"""A consumer-group member over several topics that commits only what its owner says is done.

The sinks read ``vae.events`` and ``vae.counts`` (and perhaps ``vae.detections``) in one
group, write a batch to their destination, and only then commit the batch's positions,
synchronously: auto-commit is off, so nothing is committed that the destination does not
hold. Rebalance callbacks run on the thread that polls, like ``group.GroupConsumer``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from pipeline.kafka.member import Member

log = logging.getLogger(__name__)

Position = tuple[str, int]  # (topic, partition)
PositionsCallback = Callable[[list[Position]], None]


@dataclass(frozen=True, slots=True)
class SourcedMessage:
    """A record as read, with the topic it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class CommitFailed(RuntimeError):
    """The broker did not take a commit (the batch is read again by whoever owns it next)."""


class CommittingConsumer(Member):
    """Subscribes several topics in one group; commits positions the owner hands it."""

    def __init__(
        self,
        config: dict[str, Any],
        topics: Sequence[str],
        *,
        on_assign: PositionsCallback,
        on_revoke: PositionsCallback,
        on_stats: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        # Only commit() commits, after the write.
        super().__init__({**config, "enable.auto.commit": False}, on_stats)
        self.topics = tuple(topics)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._consumer.subscribe(
            list(self.topics), on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.joined = True
        positions = [(tp.topic, tp.partition) for tp in partitions]
        log.info("assigned %s", positions)
        self._on_assign(positions)
        if self._paused and partitions:
            self._consumer.pause(partitions)

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        positions = [(tp.topic, tp.partition) for tp in partitions]
        log.info("revoked %s", positions)
        self._on_revoke(positions)

    def _lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        positions = [(tp.topic, tp.partition) for tp in partitions]
        log.warning("lost %s (session timed out?)", positions)
        self._on_revoke(positions)

    def poll(self, max_messages: int, timeout: float) -> list[SourcedMessage]:
        """Up to ``max_messages`` records, waiting at most ``timeout`` s for the first (the
        rest are only what is already fetched: ``Member._fetch``)."""
        return [
            SourcedMessage(
                message.topic() or "",
                message.partition() or 0,
                message.offset() or 0,
                message.key(),
                message.value() or b"",
            )
            for message in self._fetch(max_messages, timeout)
            if self._readable(message)
        ]

    def assignment(self) -> set[Position]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def commit(self, positions: dict[Position, int]) -> None:
        """Commit positions (the next offset to read) of partitions still owned, and wait
        for the broker; raises CommitFailed when it does not take them."""
        owned = self.assignment()
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items() if (t, p) in owned]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise CommitFailed(str(exc)) from exc
