"""One Tail, several topics, on the real broker: a topic followed from its last N records
(what each partition held at start handled by ``history``, later records by ``handle``)
beside a topic followed from its end (what it held at start never seen)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pipeline.kafka.tail import Follow, Tail
from pipeline.topics import engine_topics
from tests.conftest import Stack
from tests.kafka_tools import produce

pytestmark = pytest.mark.integration

LAST = 3


def test_a_topic_from_its_last_records_and_one_from_its_end_share_one_consumer(
    stack: Stack,
) -> None:
    kafka = stack.settings.kafka
    topics = engine_topics(stack.settings.topics)
    indexed, ended = topics.events.name, topics.counts.name
    # One record per produce call: each is a batch of its own, so the embedded broker's
    # high watermark (the base offset of the last batch + 1) is the true end.
    for i in range(6):
        produce(kafka, indexed, "k", [f"old-{i}".encode()])
    for i in range(2):
        produce(kafka, ended, "k", [f"before-{i}".encode()])

    lock = threading.Lock()
    seen: dict[str, list[tuple[str, str]]] = {indexed: [], ended: []}

    def handler(kind: str) -> Callable[[bytes | None, bytes], tuple[str, str]]:
        return lambda _key, value: (kind, value.decode())

    def deliver(topic: str) -> Callable[[list[tuple[str, str]]], None]:
        def add(batch: list[tuple[str, str]]) -> None:
            with lock:
                seen[topic].extend(batch)

        return add

    tail = Tail(
        kafka,
        [
            Follow(
                indexed,
                handler("new"),
                deliver(indexed),
                from_start=True,
                last=LAST,
                history=handler("history"),
            ),
            Follow(ended, handler("new"), deliver(ended)),
        ],
    )
    tail.start()
    try:
        assert tail.ready.wait(60), "the tail never assigned both topics"
        for i in range(2):
            produce(kafka, indexed, "k", [f"new-{i}".encode()])
        produce(kafka, ended, "k", [b"after"])
        deadline = time.monotonic() + 60
        while True:
            with lock:
                done = len(seen[indexed]) >= LAST + 2 and len(seen[ended]) >= 1
            if done:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
    finally:
        tail.stop()
    assert seen[indexed] == [
        ("history", "old-3"),
        ("history", "old-4"),
        ("history", "old-5"),
        ("new", "new-0"),
        ("new", "new-1"),
    ]
    assert seen[ended] == [("new", "after")]
    assert tail.errors == 0
