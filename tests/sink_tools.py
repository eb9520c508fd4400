"""What the sink tests share: real Avro records written into the test broker's events and
counts topics, a `vae sink ...` process, a Mosquitto of the test's own (the fixtures are in
tests/integration/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline import children
from pipeline.analytics.events import event_id
from pipeline.kafka.clients import producer_config
from pipeline.kafka.producer import CallbackProducer
from pipeline.runtime import free_port
from pipeline.serde import CountsRecord, EventRecord, LocalSchemaIds
from pipeline.topics import Topic, engine_topics
from tests.conftest import Service, Stack, start_service
from tests.kafka_tools import committed
from tests.processes import wait_until

POSTGRES_ADMIN = os.environ.get(
    "VAE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def event(stream_id: str, n: int, *, rule: str = "door", label: str = "person") -> EventRecord:
    """The ``n``-th line crossing of a stream, as the analytics write it (same ids)."""
    start = 1_700_000_000_000_000 + n * 40_000
    return {
        "event_id": event_id(stream_id, rule, "line_crossed", "", n, 1000 + n),
        "stream_id": stream_id,
        "rule": rule,
        "kind": "line_crossed",
        "phase": "",
        "label": label,
        "class_id": 0,
        "track_id": n,
        "direction": "in" if n % 2 == 0 else "out",
        "start_ts_us": start,
        "end_ts_us": start,
        "frame_id": 1000 + n,
        "score": 0.875,
        "x1": 10.0,
        "y1": 20.0,
        "x2": 110.0,
        "y2": 220.0,
        "frame_partition": 3,
        "frame_offset": 500 + n,
        "trigger_frame_id": 1000 + n,
    }


def counts(
    stream_id: str,
    window: int,
    revision: int,
    *,
    crossed_in: int = 0,
    crossed_out: int = 0,
    rule: str = "door",
    kind: str = "line",
    label: str = "person",
    entries: int = 0,
    peak: int = 0,
) -> CountsRecord:
    start = 1_700_000_000_000_000 + window * 60_000_000
    return {
        "stream_id": stream_id,
        "rule": rule,
        "kind": kind,
        "label": label,
        "window_start_us": start,
        "window_end_us": start + 60_000_000,
        "crossed_in": crossed_in,
        "crossed_out": crossed_out,
        "entries": entries,
        "peak_occupancy": peak,
        "revision": revision,
    }


class Writer:
    """Writes records into a topic the way the analytics do (its writer: key and Avro)."""

    def __init__(self, stack: Stack) -> None:
        self.topics = engine_topics(stack.settings.topics)
        self.producer = CallbackProducer(
            producer_config(stack.settings.kafka, "test", linger_ms=0, max_message_bytes=1 << 20)
        )
        self.errors: list[str] = []

    def write(self, topic: Topic[Any], records: list[Any]) -> None:
        writer = topic.writer(LocalSchemaIds())
        for record in records:
            self.producer.produce(
                writer.topic,
                writer.key(record),
                writer.value(record),
                lambda e: self.errors.append(e) if e else None,
            )
        assert self.producer.flush(15) == 0 and not self.errors, self.errors

    def close(self) -> None:
        self.producer.close(5)


class Feeder(threading.Thread):
    """Writes events over time (chunks with pauses), so a sink killed meanwhile is killed
    mid-stream: records before, during and after the kill."""

    def __init__(self, writer: Writer, records: list[EventRecord], chunk: int, pause_s: float):
        super().__init__(name="feeder", daemon=True)
        self.writer, self.records, self.chunk, self.pause_s = writer, records, chunk, pause_s
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self.records), self.chunk):
                self.writer.write(
                    self.writer.topics.events, self.records[start : start + self.chunk]
                )
                time.sleep(self.pause_s)
        except BaseException as exc:  # reported by the test
            self.failure = exc


def sink_env(stack: Stack, group: str, port: int, **extra: str) -> dict[str, str]:
    """A sink of the test's own group, quick to join the embedded broker's group and to
    retry, with small batches (so a kill lands between batches)."""
    return stack.with_env(
        VAE_SINK_GROUP_ID=group,
        VAE_SINK_PORT=str(port),
        VAE_SINK_MAX_POLL_INTERVAL_MS="6000",
        VAE_SINK_SESSION_TIMEOUT_MS="6000",
        VAE_SINK_BATCH_MAX="20",
        VAE_SINK_BATCH_MS="50",
        VAE_SINK_BACKOFF_MS="100",
        VAE_SINK_MAX_BACKOFF_MS="1000",
        **extra,
    )


def start_sink(
    stack: Stack,
    kind: str,
    env: dict[str, str],
    name: str = "",
    args: tuple[str, ...] = (),
    ready: bool = True,
) -> Service:
    """`vae sink <kind>` as a user runs it; with ``ready``, once /readyz answers 200 (in the
    group, destination reachable)."""
    port = env["VAE_SINK_PORT"]
    service = start_service(
        stack,
        name or f"sink-{kind}-{port}",
        ["sink", kind, *args],
        env,
        f"http://127.0.0.1:{port}",
    )
    if ready:
        service.wait_http("/readyz", timeout=90)
    return service


# --- PostgreSQL ---------------------------------------------------------------------------


# --- Mosquitto ----------------------------------------------------------------------------


class Mosquitto:
    """A Mosquitto of the test's own on a free port (never the system's), persistent, so it
    can be stopped and started again on the same port with its retained messages."""

    def __init__(self, folder: Path) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.skip(f"no mosquitto at {MOSQUITTO} (Debian's package mosquitto)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "user root\n"  # run as root stays root: the folder is the test's (0700)
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "log_type all\n"
        )
        self.child: children.Child | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> Mosquitto:
        self.child = children.spawn(
            f"mosquitto-{self.port}",
            [MOSQUITTO, "-c", str(self.config)],
            env=None,
            log_path=self.folder / "mosquitto.log",
            append=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return self
            assert self.child.running(), (self.folder / "mosquitto.log").read_text()
            time.sleep(0.05)
        raise AssertionError("mosquitto did not listen in 20 s")

    def stop(self) -> None:
        if self.child is not None:
            children.stop([self.child], grace_s=10)
            self.child = None


@dataclass(frozen=True)
class Kill:
    """What a kill left: records the destination held, and the group had committed."""

    stored: int
    committed: int
    at: datetime  # wall clock, to compare with the destination's own times

    @property
    def written_again(self) -> int:
        """Records the destination held that the sink had not committed: read again."""
        return max(0, self.stored - self.committed)


def committed_total(stack: Stack, group: str, topic: str) -> int:
    positions = committed(stack.settings.kafka, group, topic, 12)
    return sum(max(0, o) for o in positions.values())


def kill_mid_stream(
    stack: Stack, sink: Service, group: str, stored: Callable[[], int], at_least: int
) -> Kill:
    """SIGKILL the sink once the destination holds ``at_least`` records (while a Feeder
    still writes), and say what it held and what the group had committed then."""
    assert wait_until(lambda: stored() >= at_least, 90, 0.01), sink.log()
    sink.kill()
    at = datetime.now(UTC)
    topic = engine_topics(stack.settings.topics).events.name
    return Kill(stored(), committed_total(stack, group, topic), at)
