"""`vae sink postgres` against the real local PostgreSQL, a fresh database per test.

Real Avro records go into the test broker's events, counts and detections topics (as the
analytics write them); the sink is the `vae sink postgres` process a user runs.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from pipeline.serde import LocalSchemaIds, detections_record, frame_record, stage_timings
from pipeline.topics import engine_topics
from tests.conftest import Stack
from tests.faults import FaultTable
from tests.kafka_tools import produce, read_topic
from tests.processes import wait_until
from tests.records import counts, event
from tests.sink_tools import (
    Forwarder,
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


def _one(dsn: str, query: str, *args: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, args).fetchone()
        return row[0] if row else None


def _events(dsn: str) -> int:
    """Rows in vae.events (0 before the sink created it)."""
    try:
        return int(_one(dsn, "SELECT count(*) FROM vae.events"))
    except psycopg.errors.UndefinedTable:
        return 0


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def _event_ids(dsn: str) -> list[str]:
    """vae.events' event ids, one per row."""
    return [r[0] for r in _rows(dsn, "SELECT event_id FROM vae.events")]


def _readyz(http: str) -> int:
    try:
        with urllib.request.urlopen(http + "/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _detections(stream_id: str, frame_id: int) -> Any:
    frame = frame_record(
        stream_id=stream_id,
        frame_id=frame_id,
        capture_ts_us=1_700_000_000_000_000 + frame_id,
        gateway_ts_us=1_700_000_000_000_000 + frame_id,
        width=640,
        height=480,
        image=b"",
    )
    objects = [
        {"class_id": 0, "label": "person", "score": 0.9, "x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0}
    ]
    return detections_record(
        frame,
        objects,
        worker_ts_us=0,
        model="m",
        worker="w",
        timings=stage_timings(batch_size=1),
    )


def test_postgres_sink_upserts_by_key(stack: Stack, postgres_dsn: str) -> None:
    """Tables and indexes created, events stored once by event_id (a repeated record too),
    counts kept at their highest revision (an older revision read later changes nothing),
    detections by (stream_id, frame_id), an unreadable record dead-lettered; then every
    offset committed."""
    topics = engine_topics(stack.settings.topics)
    writer = Writer(stack)
    evs = [event(s, n) for s in ("pg-a", "pg-b") for n in range(5)]
    writer.write(topics.events, [*evs, evs[0]])  # evs[0] twice
    produce(stack.settings.kafka, topics.events.name, "pg-a", [b"not avro"])
    writer.write(
        topics.counts,
        [
            counts("pg-a", 0, 0, crossed_in=1),
            counts("pg-a", 0, 1, crossed_in=2, crossed_out=1),
            counts("pg-a", 0, 0, crossed_in=1),  # an older revision, read after the newer
            counts("pg-a", 1, 0, kind="zone", rule="bench", entries=3, peak=2),
        ],
    )
    writer.write(topics.detections, [_detections("pg-a", 1), _detections("pg-a", 1)])
    writer.close()
    group = f"sink-pg-{stack.settings.topics.events}"
    env = sink_env(stack, group)
    sink = start_sink(stack, "postgres", env, args=("--dsn", postgres_dsn, "--detections"))

    def stored() -> bool:
        return (
            _one(postgres_dsn, "SELECT count(*) FROM vae.events") == 10
            and _one(postgres_dsn, "SELECT count(*) FROM vae.counts") == 2
            and _one(postgres_dsn, "SELECT count(*) FROM vae.detections") == 1
        )

    assert wait_until(stored, 60, 0.2), sink.log()
    assert wait_until(
        lambda: (
            committed_total(stack, group, topics.events.name) == 12
            and committed_total(stack, group, topics.counts.name) == 4
            and committed_total(stack, group, topics.detections.name) == 2
        ),
        30,
        0.2,
    ), sink.log()

    ids = {r[0] for r in _rows(postgres_dsn, "SELECT event_id FROM vae.events")}
    assert ids == {e["event_id"] for e in evs}
    row = _rows(
        postgres_dsn,
        "SELECT stream_id, rule, kind, direction, start_time, score, frame_offset "
        f"FROM vae.events WHERE event_id = '{evs[1]['event_id']}'",
    )[0]
    assert row[:4] == ("pg-a", "door", "line_crossed", "out")
    assert row[4] == datetime.fromtimestamp(evs[1]["start_ts_us"] / 1e6, UTC)
    assert row[5] == pytest.approx(0.875) and row[6] == 501
    windows = _rows(
        postgres_dsn,
        "SELECT rule, kind, crossed_in, crossed_out, entries, peak_occupancy, revision "
        "FROM vae.counts ORDER BY window_start",
    )
    assert windows == [("door", "line", 2, 1, 0, 0, 1), ("bench", "zone", 0, 0, 3, 2, 0)]
    objects = _one(postgres_dsn, "SELECT objects FROM vae.detections")
    assert objects[0]["label"] == "person"
    assert _rows(postgres_dsn, "SELECT version FROM vae.schema_version") == [(1,)]
    indexes = {
        r[0]
        for r in _rows(postgres_dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'vae'")
    }
    assert {
        "events_stream_time",
        "events_time",
        "counts_stream_time",
        "counts_time",
        "detections_time",
    } <= indexes

    letters = read_topic(
        stack.settings.kafka, topics.sink_dead_letters.name, lambda r: len(r) >= 1, 30
    )
    letter = topics.sink_dead_letters.reader(LocalSchemaIds()).decode(letters[0].value)
    assert (letter["source_topic"], letter["reason"], letter["value"]) == (
        topics.events.name,
        "bad_record",
        b"not avro",
    )
    assert sink.metric('vae_sink_dead_lettered_total{reason="bad_record",sink="postgres"}') == 1
    assert sink.metric('vae_sink_destination_up{sink="postgres"}') == 1


def test_postgres_sink_waits_while_postgres_is_unreachable(stack: Stack, postgres_dsn: str) -> None:
    """PostgreSQL unreachable at start, then cut off mid-stream (connections dropped): the
    sink retries with backoff, commits nothing it has not written, and once PostgreSQL is
    back every event is there once."""
    topics = engine_topics(stack.settings.topics)
    forwarder = Forwarder(("127.0.0.1", 5432))  # nothing listens on its port yet
    dsn = psycopg.conninfo.make_conninfo(postgres_dsn, host="127.0.0.1", port=forwarder.port)
    group = f"sink-pg-down-{stack.settings.topics.events}"
    env = sink_env(stack, group, VAE_SINK_POSTGRES_DSN=dsn)
    sink = start_sink(stack, "postgres", env, ready=False)
    writer = Writer(stack)
    first = [event(f"pgd-{s}", n) for s in range(2) for n in range(10)]
    writer.write(topics.events, first)
    retries = 'vae_sink_write_retries_total{sink="postgres"}'
    sink.wait_http("/healthz")
    assert wait_until(lambda: _readyz(sink.http) == 503, 30, 0.1), sink.log()
    forwarder.start()
    assert wait_until(lambda: _events(postgres_dsn) == len(first), 60, 0.1), sink.log()
    assert wait_until(lambda: committed_total(stack, group, topics.events.name) == 20, 30, 0.1)

    forwarder.stop()  # cut: the sink's connection is dropped under it
    second = [event(f"pgd-{s}", n) for s in range(2) for n in range(10, 20)]
    writer.write(topics.events, second)
    before = sink.metric(retries)
    assert wait_until(lambda: sink.metric(retries) >= before + 2, 60, 0.1), sink.log()
    assert committed_total(stack, group, topics.events.name) == 20  # nothing more
    forwarder.start()
    every = len(first) + len(second)
    assert wait_until(lambda: _events(postgres_dsn) == every, 60, 0.1), sink.log()
    assert wait_until(
        lambda: committed_total(stack, group, topics.events.name) == every, 30, 0.1
    ), sink.log()
    writer.close()
    forwarder.stop()
    assert sink.metric('vae_sink_destination_up{sink="postgres"}') == 1


@pytest.mark.faults
def test_postgres_sink_sigkill_mid_stream_stores_each_event_once(
    stack: Stack, postgres_dsn: str, fault_table: FaultTable
) -> None:
    """Killed while events arrive, restarted: every event is in the table once (a batch is
    one transaction, so a kill leaves it whole or not at all; one that was committed in
    PostgreSQL and not in Kafka is written again, and ON CONFLICT keeps one row)."""
    group = f"sink-pg-kill-{stack.settings.topics.events}"
    env = sink_env(stack, group, VAE_SINK_POSTGRES_DSN=postgres_dsn)
    sink = start_sink(stack, "postgres", env, name="killed-sink-postgres")
    records = [event(f"pgk-{s}", n) for n in range(100) for s in range(4)]
    count = "SELECT count(*) FROM vae.events"
    kill = kill_while_feeding(stack, sink, group, records, lambda: int(_one(postgres_dsn, count)))

    again = restart_sink(stack, "postgres", env)
    wait_caught_up(stack, group, records, lambda: _event_ids(postgres_dsn), again)
    first_after = _one(
        postgres_dsn, "SELECT min(written_at) FROM vae.events WHERE written_at > %s", kill.at
    )
    ids = _event_ids(postgres_dsn)
    recovery_s = (first_after - kill.at).total_seconds() if first_after else -1.0
    fault_table.record(
        restart_row("sink postgres SIGKILL mid-stream + restart", records, ids, recovery_s)
    )
    print(f"at the kill: {kill}, {kill.written_again} events written again after the restart")
    wanted = {r["event_id"] for r in records}
    assert set(ids) == wanted and len(ids) == len(wanted)
