"""`vae sink mqtt` against a real Mosquitto of the test's own (never the system's), stopped
and started again mid-test."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.topics import engine_topics
from tests.conftest import Stack
from tests.faults import FaultTable
from tests.processes import wait_until
from tests.records import counts, event
from tests.sink_tools import (
    Mosquitto,
    Subscriber,
    Writer,
    committed_total,
    kill_while_feeding,
    restart_row,
    restart_sink,
    sink_env,
    start_sink,
    wait_caught_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX = "site-1/vae"


def mqtt_env(stack: Stack, group: str, mosquitto: Mosquitto, **extra: str) -> dict[str, str]:
    """A sink's environment publishing to the test's Mosquitto under PREFIX."""
    return sink_env(
        stack, group, VAE_SINK_MQTT_PORT=str(mosquitto.port), VAE_SINK_MQTT_PREFIX=PREFIX, **extra
    )


def test_mqtt_sink_survives_a_mosquitto_restart(stack: Stack, mosquitto: Mosquitto) -> None:
    """Events published while Mosquitto is down arrive once it is back, none lost, at a
    subscriber with a persistent session; nothing is committed until they are PUBACKed; the
    retained topics hold the newest window's counts."""
    topics = engine_topics(stack.settings.topics)
    subscriber = Subscriber(mosquitto, f"{PREFIX}/#", persistent=True)
    group = f"sink-mqtt-{stack.settings.topics.events}"
    env = mqtt_env(stack, group, mosquitto, VAE_SINK_MQTT_ACK_TIMEOUT_S="1")
    sink = start_sink(stack, "mqtt", env)
    writer = Writer(stack)
    before = [event(f"mq-{s}", n) for s in range(2) for n in range(10)]
    writer.write(topics.events, before)
    writer.write(
        topics.counts,
        [
            counts("mq-0", 0, 0, crossed_in=1),
            counts("mq-0", 0, 1, crossed_in=3, crossed_out=1),
            counts("mq-1", 0, 0, kind="zone", rule="bench", entries=2, peak=1),
        ],
    )
    first = {e["event_id"] for e in before}
    assert wait_until(lambda: first <= set(subscriber.events()), 60, 0.05), sink.log()
    assert wait_until(
        lambda: committed_total(stack, group, topics.events.name) == len(before), 30, 0.1
    )

    mosquitto.stop()
    after = [event(f"mq-{s}", n) for s in range(2) for n in range(10, 20)]
    writer.write(topics.events, after)
    writer.write(topics.counts, [counts("mq-0", 1, 0, crossed_in=5, crossed_out=2)])
    retries = 'vae_sink_write_retries_total{sink="mqtt"}'
    assert wait_until(lambda: sink.metric(retries) >= 2, 60, 0.1), sink.log()
    assert sink.metric('vae_sink_destination_up{sink="mqtt"}') == 0
    assert committed_total(stack, group, topics.events.name) == len(before)  # none PUBACKed

    mosquitto.start()
    every = first | {e["event_id"] for e in after}
    assert wait_until(lambda: every <= set(subscriber.events()), 90, 0.1), sink.log()
    assert wait_until(
        lambda: (
            committed_total(stack, group, topics.events.name) == len(before) + len(after)
            and committed_total(stack, group, topics.counts.name) == 4
        ),
        30,
        0.1,
    ), sink.log()
    writer.close()
    subscriber.close()

    # A new subscriber learns the live counts at once from the retained messages.
    fresh = Subscriber(mosquitto, f"{PREFIX}/+/+/+/+")
    expected = {
        f"{PREFIX}/mq-0/door/person/in": b"5",
        f"{PREFIX}/mq-0/door/person/out": b"2",
        f"{PREFIX}/mq-1/bench/person/entries": b"2",
        f"{PREFIX}/mq-1/bench/person/occupancy": b"1",
    }
    assert wait_until(lambda: expected.items() <= fresh.latest().items(), 20, 0.05), fresh.latest()
    window = json.loads(fresh.latest()[f"{PREFIX}/mq-0/door/person/window"])
    assert (window["type"], window["window_start_us"], window["revision"]) == (
        "counts",
        1_700_000_060_000_000,
        0,
    )
    assert all(retained for _, _, retained in fresh.messages)
    fresh.close()
    assert sink.metric('vae_sink_destination_up{sink="mqtt"}') == 1


@pytest.mark.faults
def test_mqtt_sink_sigkill_mid_stream_publishes_every_event(
    stack: Stack, mosquitto: Mosquitto, fault_table: FaultTable
) -> None:
    """Killed while events arrive, restarted: a subscriber receives every event at least
    once (QoS 1), so deduplicating by event_id gives the complete set."""
    subscriber = Subscriber(mosquitto, f"{PREFIX}/events")
    group = f"sink-mqtt-kill-{stack.settings.topics.events}"
    env = mqtt_env(stack, group, mosquitto)
    sink = start_sink(stack, "mqtt", env, name="killed-sink-mqtt")
    records = [event(f"mqk-{s}", n) for n in range(100) for s in range(4)]
    kill = kill_while_feeding(stack, sink, group, records, lambda: len(set(subscriber.events())))
    killed_at = time.monotonic()

    again = restart_sink(stack, "mqtt", env)
    seen_at_kill = len(subscriber.events())
    assert wait_until(lambda: len(subscriber.events()) > seen_at_kill, 90, 0.02), again.log()
    recovery_s = time.monotonic() - killed_at
    wait_caught_up(stack, group, records, subscriber.events, again)
    received = subscriber.events()
    subscriber.close()
    fault_table.record(
        restart_row(
            "sink mqtt SIGKILL mid-stream + restart (duplicated: messages repeated, same id)",
            records,
            received,
            recovery_s,
        )
    )
    print(f"at the kill: {kill}; {len(received) - len(set(received))} repeated messages")
    assert set(received) == {r["event_id"] for r in records}
