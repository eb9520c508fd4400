"""What the sink tests share: real Avro records written into the test broker's events and
counts topics, a `vae sink ...` process, a Mosquitto of the test's own (the fixtures are in
tests/integration/conftest.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline import children
from pipeline.kafka.clients import producer_config
from pipeline.kafka.producer import CallbackProducer
from pipeline.runtime import free_port
from pipeline.serde import EventRecord, LocalSchemaIds
from pipeline.topics import Topic, engine_topics
from tests.conftest import Service, Stack, start_service
from tests.faults import FaultRow
from tests.kafka_tools import committed
from tests.processes import wait_until

POSTGRES_ADMIN = os.environ.get(
    "VAE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


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


def sink_env(stack: Stack, group: str, **extra: str) -> dict[str, str]:
    """A sink of the test's own group on a free port, quick to join the embedded broker's
    group and to retry, with small batches (so a kill lands between batches)."""
    return stack.with_env(
        VAE_SINK_GROUP_ID=group,
        VAE_SINK_PORT=str(free_port()),
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


def kill_while_feeding(
    stack: Stack, sink: Service, group: str, records: list[EventRecord], stored: Callable[[], int]
) -> Kill:
    """Write ``records`` into the events topic over time (a Feeder) and SIGKILL the sink
    once the destination holds 80 of them; what the kill left, once every record is written."""
    writer = Writer(stack)
    feeder = Feeder(writer, records, chunk=10, pause_s=0.02)
    feeder.start()
    kill = kill_mid_stream(stack, sink, group, stored, 80)
    feeder.join(60)
    assert feeder.failure is None, feeder.failure
    writer.close()
    assert kill.stored < len(records), "the kill landed after the stream: no fault"
    return kill


def restart_sink(stack: Stack, kind: str, env: dict[str, str]) -> Service:
    """A killed sink started again: its group and settings, on a port of its own, not awaited."""
    return start_sink(stack, kind, {**env, "VAE_SINK_PORT": str(free_port())}, ready=False)


def wait_caught_up(
    stack: Stack,
    group: str,
    records: list[EventRecord],
    came_out: Callable[[], Collection[str]],
    sink: Service,
) -> None:
    """What a restarted sink owes: every record's event_id out at the destination
    (``came_out``: the ids it holds) and every record committed by the sink's group."""
    wanted = {r["event_id"] for r in records}
    assert wait_until(lambda: wanted <= set(came_out()), 90, 0.1), sink.log()
    topic = engine_topics(stack.settings.topics).events.name
    assert wait_until(lambda: committed_total(stack, group, topic) == len(records), 30, 0.1), (
        sink.log()
    )


def restart_row(
    fault: str, records: list[EventRecord], came_out: Sequence[str], recovery_s: float
) -> FaultRow:
    """The fault table's row of a sink killed mid-stream and restarted: every record was in
    the events topic (sent and acked), and each event should come out once."""
    return FaultRow.tally(
        fault,
        sent=len(records),
        acked=len(records),
        wanted={r["event_id"] for r in records},
        came_out=came_out,
        recovery_s=recovery_s,
    )


# --- a webhook receiver -------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    key: str
    body: bytes
    signature: str
    content_type: str
    status: int
    at: float  # time.time() of its arrival


class QuietServer(ThreadingHTTPServer):
    """A sink killed mid-request resets its connection: expected here, not worth a trace."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class Receiver:
    """A real HTTP receiver (the standard library's threading server) on ``port``: records
    every POST, answers what ``answer(key, attempt)`` says (attempt 1 for a key's first)."""

    def __init__(self, port: int, answer: Callable[[str, int], int]) -> None:
        self.port = port
        self.answer = answer
        self.posts: list[Post] = []
        self.lock = threading.Lock()
        self.on_post: Callable[[int], None] = lambda n: None  # called with the POST's number
        self._server: QuietServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def attempts(self, key: str) -> int:
        with self.lock:
            return sum(1 for p in self.posts if p.key == key)

    def delivered(self) -> dict[str, list[Post]]:
        """Posts answered 2xx, by Idempotency-Key (a receiver stores a key once)."""
        out: dict[str, list[Post]] = {}
        with self.lock:
            for post in self.posts:
                if 200 <= post.status < 300:
                    out.setdefault(post.key, []).append(post)
        return out

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    attempt = 1 + sum(1 for p in receiver.posts if p.key == key)
                    status = receiver.answer(key, attempt)
                    receiver.posts.append(
                        Post(
                            key,
                            body,
                            self.headers.get("X-VAE-Signature", ""),
                            self.headers.get("Content-Type", ""),
                            status,
                            time.time(),
                        )
                    )
                    number = len(receiver.posts)
                receiver.on_post(number)
                with contextlib.suppress(OSError):  # the sink may be gone (killed by on_post)
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = QuietServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- an MQTT subscriber -------------------------------------------------------------------


class Subscriber:
    """A paho subscriber (QoS 1) to ``topic`` that keeps every message it gets; with
    ``persistent``, a persistent session (clean_session false): what is published while it
    is away is kept for it by the broker."""

    def __init__(self, broker: Mosquitto, topic: str, *, persistent: bool = False) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{os.urandom(4).hex()}",
            clean_session=not persistent,
        )
        self.client.reconnect_delay_set(1, 1)

        def on_connect(client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not reason.is_failure:
                client.subscribe(topic, qos=1)
                self.connected.set()

        def on_message(_c: Any, _u: Any, message: Any) -> None:
            with self.lock:
                self.messages.append((message.topic, message.payload, bool(message.retain)))

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect_async(*broker.address)
        self.client.loop_start()
        assert self.connected.wait(20), "subscriber did not connect"

    def events(self) -> list[str]:
        """The event_id of every event message received (repeats included)."""
        with self.lock:
            return [
                json.loads(payload)["event_id"]
                for topic, payload, _ in self.messages
                if topic.endswith("/events")
            ]

    def latest(self) -> dict[str, bytes]:
        """The last payload received on each topic."""
        with self.lock:
            return {topic: payload for topic, payload, _ in self.messages}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- a TCP forwarder: a destination that goes away and comes back --------------------------


class Forwarder:
    """Forwards a port to another (PostgreSQL's), so a test can take the destination away
    (``stop``: the listener closed and every open connection cut) and bring it back on the
    same port (``start``), while the real server behind it stays up for others."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> Forwarder:
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                server = socket.create_connection(self.target, 5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)  # idle connections stay open
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked on it (Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets = []
