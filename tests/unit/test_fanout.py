"""Fan-out: interest by stream, bounded queues that drop the oldest, counted."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.gateway.fanout import FanoutHub, Subscriber
from pipeline.gateway.streams import StreamRegistry


async def test_subscribers_get_only_their_streams() -> None:
    hub = FanoutHub()
    a = Subscriber(frozenset({"a"}), 10)
    ab = Subscriber(frozenset({"a", "b"}), 10)
    everything = Subscriber(None, 10)
    for s in (a, ab, everything):
        hub.add(s)
    assert hub.publish("a", "m1") == (3, 0)
    assert hub.publish("b", "m2") == (2, 0)
    assert hub.publish("c", "m3") == (1, 0)
    assert [await a.next()] == ["m1"]
    assert [await ab.next(), await ab.next()] == ["m1", "m2"]
    assert [await everything.next() for _ in range(3)] == ["m1", "m2", "m3"]
    assert len(hub) == 3


async def test_full_queue_drops_oldest_and_counts() -> None:
    slow = Subscriber(None, 3)
    for i in range(5):
        slow.offer(f"m{i}")
    assert slow.dropped == 2
    assert slow.take_dropped() == 2 and slow.take_dropped() == 0
    assert [await slow.next() for _ in range(3)] == ["m2", "m3", "m4"]


async def test_a_slow_subscriber_does_not_hold_back_a_fast_one() -> None:
    hub = FanoutHub()
    slow, fast = Subscriber(None, 2), Subscriber(None, 100)
    hub.add(slow)
    hub.add(fast)
    dropped = sum(hub.publish("s", f"m{i}")[1] for i in range(50))
    assert dropped == 48
    assert len(fast) == 50 and len(slow) == 2


async def test_next_waits_for_a_message() -> None:
    subscriber = Subscriber(None, 4)
    waiter = asyncio.create_task(subscriber.next())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    subscriber.offer("hello")
    assert await asyncio.wait_for(waiter, 1) == "hello"


def test_removed_subscribers_get_nothing() -> None:
    hub = FanoutHub()
    s = Subscriber(frozenset({"a"}), 4)
    hub.add(s)
    hub.remove(s)
    assert hub.publish("a", "m") == (0, 0)
    assert len(hub) == 0


def test_queue_needs_room() -> None:
    with pytest.raises(ValueError):
        Subscriber(None, 0)


def test_stream_registry_is_bounded_lru() -> None:
    streams = StreamRegistry(capacity=2)
    streams.frame("a", 1, 100, 10, 10, b"A")
    streams.frame("b", 1, 100, 10, 10, b"B")
    streams.frame("a", 2, 200, 10, 10, b"A2")  # a is now the most recent
    streams.frame("c", 1, 300, 10, 10, b"C")  # evicts b
    assert [s["stream_id"] for s in streams.summaries()] == ["a", "c"]
    state = streams.get("a")
    assert state is not None and state.image == b"A2" and state.frames == 2
    streams.detections("a", 2, 250)
    assert state.detections_frame_id == 2
