"""`vae sink webhook` against a real local HTTP receiver (a threading http.server)."""

from __future__ import annotations

import json
import time

import pytest

from connectors.sinks.webhook import verify
from pipeline.runtime import free_port
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.conftest import Stack
from tests.faults import FaultTable
from tests.kafka_tools import read_topic
from tests.processes import wait_until
from tests.records import counts, event
from tests.sink_tools import (
    Receiver,
    Writer,
    committed_total,
    restart_row,
    restart_sink,
    sink_env,
    start_sink,
    wait_caught_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "test-webhook-secret-0123456789abcdef"


def test_webhook_sink_waits_for_the_receiver_retries_and_dead_letters(stack: Stack) -> None:
    """The receiver is down at first (nothing committed meanwhile), then fails the first
    attempt of some events and every attempt of one: every other record arrives signed,
    the poisoned one is tried --max-attempts times, lands in the dead-letter topic, and
    then every offset is committed."""
    topics = engine_topics(stack.settings.topics)
    records = [event(f"wh-{s}", n) for s in range(3) for n in range(8)]
    poisoned = records[5]["event_id"]
    flaky = {r["event_id"] for r in records[::4]}
    writer = Writer(stack)
    writer.write(topics.events, records)
    writer.write(topics.counts, [counts("wh-0", 0, 0, crossed_in=4, crossed_out=2)])
    writer.close()
    group = f"sink-wh-{stack.settings.topics.events}"
    receiver_port = free_port()
    env = sink_env(
        stack,
        group,
        VAE_SINK_WEBHOOK_URL=f"http://127.0.0.1:{receiver_port}/hook",
        VAE_WEBHOOK_SECRET=SECRET,
        VAE_SINK_WEBHOOK_MAX_ATTEMPTS="3",
    )
    sink = start_sink(stack, "webhook", env, ready=False)
    sink.wait_http("/healthz", timeout=60)
    # Down: the sink retries with backoff and commits nothing.
    assert wait_until(lambda: sink.metric('vae_sink_write_retries_total{sink="webhook"}') >= 3, 60)
    assert sink.metric('vae_sink_webhook_answers_total{sink="webhook",status="unreachable"}') >= 3
    assert committed_total(stack, group, topics.events.name) == 0

    def answer(key: str, attempt: int) -> int:
        if key == poisoned or (key in flaky and attempt == 1):
            return 500
        return 200

    receiver = Receiver(receiver_port, answer).start()
    try:
        wanted = {r["event_id"] for r in records} - {poisoned}
        assert wait_until(lambda: wanted <= set(receiver.delivered()), 60, 0.1), sink.log()
        letters = read_topic(stack.settings.kafka, topics.sink_dead_letters.name, bool, 60)
        assert wait_until(
            lambda: (
                committed_total(stack, group, topics.events.name) == len(records)
                and committed_total(stack, group, topics.counts.name) == 1
            ),
            30,
            0.1,
        ), sink.log()
    finally:
        receiver.stop()

    delivered = receiver.delivered()
    assert set(delivered) == wanted | {"counts/wh-0/door/line/person/1700000000000000/0"}
    for post in receiver.posts:  # every attempt signed over its exact body
        assert verify(SECRET, post.body, post.signature), post
        assert post.content_type == "application/json"
        body = json.loads(post.body)
        assert post.key == body.get("event_id", post.key)
    counted = json.loads(delivered["counts/wh-0/door/line/person/1700000000000000/0"][0].body)
    assert (counted["type"], counted["crossed_in"], counted["crossed_out"]) == ("counts", 4, 2)
    assert all(receiver.attempts(k) == 2 for k in flaky - {poisoned})
    assert receiver.attempts(poisoned) == 3

    assert len(letters) == 1
    letter = topics.sink_dead_letters.reader(LocalSchemaIds()).decode(letters[0].value)
    assert (letter["source_topic"], letter["reason"]) == (topics.events.name, "refused")
    assert "500" in letter["detail"] and letter["key"] == "wh-0"
    original = topics.events.reader(LocalSchemaIds()).decode(letter["value"])
    assert original["event_id"] == poisoned
    assert sink.metric('vae_sink_dead_lettered_total{reason="refused",sink="webhook"}') == 1


@pytest.mark.faults
def test_webhook_sink_sigkill_mid_batch_delivers_every_key(
    stack: Stack, fault_table: FaultTable
) -> None:
    """The receiver itself kills the sink (SIGKILL) while it waits for the answer to a
    POST in the middle of a batch: after the restart, the batch's POSTs come again with the
    same Idempotency-Key, and the receiver holds every key."""
    topics = engine_topics(stack.settings.topics)
    records = [event(f"whk-{s}", n) for n in range(60) for s in range(4)]
    writer = Writer(stack)
    writer.write(topics.events, records)
    writer.close()
    group = f"sink-wh-kill-{stack.settings.topics.events}"
    receiver = Receiver(free_port(), lambda key, attempt: 200).start()
    env = sink_env(stack, group, VAE_SINK_WEBHOOK_URL=receiver.url, VAE_WEBHOOK_SECRET=SECRET)
    try:
        sink = start_sink(stack, "webhook", env, name="killed-sink-webhook", ready=False)
        killed: list[float] = []

        def kill_at(number: int) -> None:
            if number == 95:  # mid-stream, and mid-batch (batches of 20)
                sink.kill()
                killed.append(time.time())

        receiver.on_post = kill_at
        assert wait_until(lambda: bool(killed), 90, 0.05), sink.log()
        sent_before = len(receiver.posts)
        again = restart_sink(stack, "webhook", env)
        wait_caught_up(stack, group, records, receiver.delivered, again)
    finally:
        receiver.stop()
    delivered = receiver.delivered()
    repeats = sum(len(posts) - 1 for posts in delivered.values())
    first_after = receiver.posts[sent_before].at
    fault_table.record(
        restart_row(
            "sink webhook SIGKILL mid-batch + restart (duplicated: POSTs repeated, same key)",
            records,
            [key for key, posts in delivered.items() for _ in posts],
            first_after - killed[0],
        )
    )
    assert set(delivered) == {r["event_id"] for r in records}
    assert repeats >= 1  # the POST being answered when the sink died came again
    assert all(verify(SECRET, p.body, p.signature) for p in receiver.posts)
