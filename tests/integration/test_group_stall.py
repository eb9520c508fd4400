"""A group member that did not poll for longer than its session timeout suspends fetching
until the group speaks; when the group says nothing (its heartbeats went on: only the
polling thread stalled), it fetches again after one session timeout from where it was,
skipping nothing. (The other outcome, the partitions lost while the process was stopped,
is tests/integration/test_worker_sigstop.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pipeline.kafka.clients import consumer_config
from pipeline.kafka.group import GroupConsumer, RawMessage
from tests.kafka_tools import produce

pytestmark = pytest.mark.integration

SESSION_MS = 3000
MAX_POLL_MS = 6000  # above the stall: librdkafka keeps the member in the group


def _poll_until(consumer: GroupConsumer, count: int, timeout: float) -> list[RawMessage]:
    out: list[RawMessage] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out += consumer.poll(count - len(out), 0.1)
    return out


def test_a_stalled_poller_that_kept_its_partitions_goes_on_where_it_was(stack: Any) -> None:
    kafka, topic = stack.settings.kafka, stack.settings.topics.frames
    produce(kafka, topic, "stall", [b"%d" % i for i in range(10)])
    events: list[str] = []
    consumer = GroupConsumer(
        consumer_config(
            kafka,
            "test",
            group_id=f"{stack.settings.worker.group_id}-stall",
            max_poll_interval_ms=MAX_POLL_MS,
            session_timeout_ms=SESSION_MS,
        ),
        topic,
        on_assign=lambda p: events.append(f"assign {p}"),
        on_revoke=lambda p: events.append(f"revoke {p}"),
        on_lost=lambda p: events.append(f"lost {p}"),
    )
    try:
        first = _poll_until(consumer, 3, 60)
        assert [m.value for m in first] == [b"0", b"1", b"2"], events
        time.sleep(SESSION_MS / 1000 + 1.0)  # no poll: longer than the session timeout
        stalled_at = time.monotonic()
        assert consumer.poll(5, 0.1) == [] and consumer.suspended
        rest = _poll_until(consumer, 7, 30)
        resumed_after = time.monotonic() - stalled_at
        assert [m.value for m in rest] == [b"%d" % i for i in range(3, 10)]  # nothing skipped
        assert not consumer.suspended
        # No rebalance came: it waited one session timeout, then fetched again.
        assert all(e.startswith("assign") for e in events), events
        assert resumed_after >= SESSION_MS / 1000 * 0.9, resumed_after
    finally:
        consumer.close(10)
