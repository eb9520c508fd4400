"""VAE_GATEWAY_PROCESSES=2: two gateway processes on one port (SO_REUSEPORT) under a parent.

Connections land on both; every endpoint answers the same whichever process a request
lands on (each answer names its process in X-Gateway-Process): a camera's frames held by
one process are served through the other, a subscriber of one process watches a stream
ingested by the other, detections, events, counts and rules reach both, /metrics sums
both, an event's snapshot comes from either (each indexes the events topic itself, from
before its start too). Killing the parent outright leaves no child behind; a child that
dies is restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from websockets.asyncio.client import ClientConnection, connect

from pipeline.protocol.envelope import build_envelope
from pipeline.serde import LocalSchemaIds, stage_timings
from pipeline.topics import engine_topics
from tests import records
from tests.analytics_clip import RULES_YAML
from tests.conftest import AUTH, Service, Stack, launch_gateway, ws_url
from tests.kafka_tools import frame, produce

pytestmark = pytest.mark.integration

PROCESSES = ("0", "1")
TRIES = 64  # connections opened until one lands on a given process (each: 1/2)


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same picture with a JPEG comment segment: a distinct, valid file per frame."""
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def two_process_gateway(stack: Stack, **env: str) -> Service:
    gateway = launch_gateway(stack, True, 0, VAE_GATEWAY_PROCESSES="2", **env)
    # Ready means one child answered; wait until both do.
    each(gateway.http + "/readyz", lambda status, _body: status == 200)
    return gateway


def get(url: str) -> tuple[int, str, bytes, dict[str, str]]:
    """Status, the answering process, body and headers of a GET with the test token."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH), timeout=5) as r:
            return r.status, r.headers["X-Gateway-Process"], r.read(), dict(r.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.headers["X-Gateway-Process"], error.read(), dict(error.headers)


def each(
    url: str, good: Callable[[int, bytes], bool], timeout: float = 60.0
) -> dict[str, tuple[int, bytes, dict[str, str]]]:
    """GET ``url`` (a new connection each time) until both processes gave a good answer."""
    answers: dict[str, tuple[int, bytes, dict[str, str]]] = {}
    deadline = time.monotonic() + timeout
    while set(answers) != set(PROCESSES):
        assert time.monotonic() < deadline, (url, {k: v[:2] for k, v in answers.items()})
        with_retry = True
        try:
            status, process, body, headers = get(url)
        except OSError:
            with_retry = False
        if with_retry and good(status, body):
            answers[process] = (status, body, headers)
        else:
            time.sleep(0.05)
    return answers


async def connect_to(process: str, url: str) -> ClientConnection:
    """A WebSocket that landed on ``process`` (others are closed and tried again)."""
    for _ in range(TRIES):
        socket = await connect(url, additional_headers=AUTH, compression=None, max_size=2**22)
        assert socket.response is not None
        if socket.response.headers["X-Gateway-Process"] == process:
            return socket
        await socket.close()
    raise AssertionError(f"{TRIES} connections to {url}, none on process {process}")


async def recv_json(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 30.0))
    return message


async def test_frames_held_by_one_process_are_served_through_either(
    stack: Stack, dog_jpeg: bytes
) -> None:
    gateway = two_process_gateway(stack, VAE_GATEWAY_FRAME_HISTORY="8")
    url, http = ws_url(gateway), gateway.http
    # Many connections: the kernel spreads them over both processes.
    cameras = [
        await connect(f"{url}/v1/ingest/many-{i}", additional_headers=AUTH) for i in range(32)
    ]
    landed = {c.response.headers["X-Gateway-Process"] for c in cameras if c.response}
    assert landed == set(PROCESSES), landed
    # A viewer's subscriber on process 0 names a stream whose camera is on process 1.
    viewer = await connect_to("0", f"{url}/v1/subscribe?streams=cam-a")
    assert (await recv_json(viewer))["type"] == "hello"
    camera = await connect_to("1", f"{url}/v1/ingest/cam-a?ack=1")
    assert (await recv_json(camera))["type"] == "hello"
    frames: list[bytes] = []

    async def send(text: str) -> int:
        frame_id = len(frames)
        frames.append(with_comment(dog_jpeg, text))
        await camera.send(build_envelope(frame_id, time.time_ns() // 1000, frames[-1]))
        ack = await recv_json(camera)
        assert ack["type"] == "ack" and ack["frame_id"] == frame_id, ack
        return frame_id

    # Process 1 hears of the watch from process 0 shortly: from then on it keeps cam-a's
    # frames. Send until the first one is held (a GET on either process finds it).
    deadline = time.monotonic() + 30
    while True:
        frame_id = await send(f"probe {len(frames)}")
        status, _, _, _ = await asyncio.to_thread(
            get, f"{http}/v1/streams/cam-a/frames/{frame_id}.jpg"
        )
        if status == 200:
            break
        assert time.monotonic() < deadline, "process 1 never kept the watched stream's frames"
    first = frame_id
    for i in range(3):
        await send(f"frame {i}")
    last = len(frames) - 1

    base = f"{http}/v1/streams/cam-a"
    for frame_id in (first, last):
        answers = await asyncio.to_thread(
            each, f"{base}/frames/{frame_id}.jpg", lambda s, _b: s == 200
        )
        for _status, body, headers in answers.values():
            assert body == frames[frame_id] and headers["X-Frame-Id"] == str(frame_id)
    latest = await asyncio.to_thread(each, f"{base}/latest.jpg", lambda s, _b: s == 200)
    assert {body for _, body, _ in latest.values()} == {frames[last]}
    missing = await asyncio.to_thread(each, f"{base}/frames/999.jpg", lambda s, _b: True)
    assert {status for status, _, _ in missing.values()} == {404}

    def listed(status: int, body: bytes) -> bool:
        return status == 200 and any(s["stream_id"] == "cam-a" for s in json.loads(body)["streams"])

    for _, body, _ in (await asyncio.to_thread(each, f"{http}/v1/streams", listed)).values():
        streams = {s["stream_id"]: s for s in json.loads(body)["streams"]}
        assert streams["cam-a"]["frames"] == len(frames)
        assert streams["cam-a"]["frame_id"] == last
        assert {f"many-{i}" for i in range(32)}.isdisjoint(streams)  # no frame sent yet

    # /metrics on either process adds up both.
    def metric(body: bytes, name: str) -> float:
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return -1.0

    for _, body, _ in (
        await asyncio.to_thread(each, f"{http}/metrics", lambda s, _b: True)
    ).values():
        assert metric(body, "vae_gateway_frames_received_total") == len(frames)
        assert metric(body, "vae_gateway_frames_produced_total") == len(frames)
        assert metric(body, "vae_gateway_ingest_connections") == 33
        assert metric(body, "vae_gateway_subscribers") == 1
    for socket in [*cameras, camera, viewer]:
        await socket.close()


async def test_detections_events_counts_and_rules_reach_both_processes(stack: Stack) -> None:
    gateway = two_process_gateway(stack)
    url, http = ws_url(gateway), gateway.http
    subscribers = [await connect_to(p, f"{url}/v1/subscribe?streams=*") for p in PROCESSES]
    watchers = [await connect_to(p, f"{url}/v1/events?streams=*") for p in PROCESSES]
    for socket in [*subscribers, *watchers]:
        assert (await recv_json(socket))["type"] == "hello"

    topics = engine_topics(stack.settings.topics)
    ids = LocalSchemaIds()
    now_us = time.time_ns() // 1000
    detections = topics.detections.writer(ids)
    record = {
        "stream_id": "cam-b",
        "frame_id": 7,
        "capture_ts_us": now_us,
        "gateway_ts_us": now_us,
        "worker_ts_us": now_us,
        "width": 640,
        "height": 360,
        "model": "test",
        "worker": "test",
        "timings": stage_timings(batch_size=1),
        "objects": [],
        "inferred": True,
    }
    event = records.event(
        "cam-b", 1, rule="middle", label="car", start_ts_us=now_us, end_ts_us=now_us
    )
    counts = records.counts("cam-b", 0, 0, rule="middle", label="car", crossed_in=3, crossed_out=1)
    kafka = stack.settings.kafka
    await asyncio.to_thread(
        produce,
        kafka,
        topics.detections.name,
        "cam-b",
        [detections.value(record)],  # type: ignore[arg-type]
    )
    await asyncio.to_thread(
        produce, kafka, topics.events.name, "cam-b", [topics.events.writer(ids).value(event)]
    )
    await asyncio.to_thread(
        produce, kafka, topics.counts.name, "cam-b", [topics.counts.writer(ids).value(counts)]
    )
    for socket in subscribers:
        message = await recv_json(socket)
        assert (message["type"], message["stream_id"], message["frame_id"]) == (
            "detections",
            "cam-b",
            7,
        )
    for socket in watchers:
        kinds: set[str] = set()
        while not {"event", "counts"} <= kinds:
            message = await recv_json(socket)
            assert message["stream_id"] == "cam-b", message
            kinds.add(message["type"])

    def counted(status: int, body: bytes) -> bool:
        return status == 200 and any(
            t["crossed_in"] == 3 for t in json.loads(body).get("totals", [])
        )

    await asyncio.to_thread(each, f"{http}/v1/streams/cam-b/counts", counted)

    # Rules saved through process 0 are in force on both (each follows the rules topic).
    editor = await connect_to("0", f"{url}/v1/rules")
    assert (await recv_json(editor))["type"] == "hello"
    await editor.send(RULES_YAML)
    assert (await recv_json(editor)) == {"type": "rules_saved", "streams": 1}
    await editor.close()
    saved = await asyncio.to_thread(
        each, f"{http}/v1/rules", lambda s, b: s == 200 and b.decode() == RULES_YAML
    )
    assert set(saved) == set(PROCESSES)
    for socket in [*subscribers, *watchers]:
        await socket.close()


def write_frame(stack: Stack, stream_id: str, frame_id: int, image: bytes) -> tuple[int, int]:
    """A frame into vae.frames as the gateway writes it; its partition and offset."""
    writer = engine_topics(stack.settings.topics).frames.writer(LocalSchemaIds())
    record = frame(stream_id, frame_id, image)
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    reports: list[tuple[Any, int, int]] = []
    producer.produce(
        writer.topic,
        writer.value(record),
        writer.key(record),
        on_delivery=lambda error, m: reports.append((error, m.partition(), m.offset())),
    )
    assert producer.flush(30) == 0
    [(error, partition, offset)] = reports
    assert error is None, error
    return partition, offset


def write_event(stack: Stack, event_id: str, frame_id: int, where: tuple[int, int]) -> None:
    """An event of cam-m whose best frame is at ``where`` in vae.frames."""
    topics = engine_topics(stack.settings.topics)
    now_us = time.time_ns() // 1000
    event = records.event(
        "cam-m",
        1,
        rule="middle",
        event_id=event_id,
        label="dog",
        class_id=16,
        start_ts_us=now_us,
        end_ts_us=now_us,
        frame_id=frame_id,
        score=0.9,
        x1=100.0,
        y1=100.0,
        x2=300.0,
        y2=400.0,
        frame_partition=where[0],
        frame_offset=where[1],
        trigger_frame_id=frame_id,
    )
    value = topics.events.writer(LocalSchemaIds()).value(event)
    produce(stack.settings.kafka, topics.events.name, "cam-m", [value])


async def test_an_events_snapshot_comes_from_either_process(stack: Stack, dog_jpeg: bytes) -> None:
    images = [with_comment(dog_jpeg, f"frame {i}") for i in range(2)]
    # An event from before the gateway started: each process indexes it at start.
    write_event(stack, "e-before", 0, write_frame(stack, "cam-m", 0, images[0]))
    gateway = two_process_gateway(stack)
    url, http = ws_url(gateway), gateway.http
    watchers = [await connect_to(p, f"{url}/v1/events?streams=cam-m") for p in PROCESSES]
    for socket in watchers:
        assert (await recv_json(socket))["type"] == "hello"
    write_event(stack, "e-after", 1, write_frame(stack, "cam-m", 1, images[1]))
    for socket in watchers:  # the one from before the start went to the index only
        message = await recv_json(socket)
        assert (message["type"], message["event_id"]) == ("event", "e-after"), message

    for frame_id, event_id in enumerate(("e-before", "e-after")):
        base = f"{http}/v1/events/{event_id}/snapshot.jpg"
        stored = await asyncio.to_thread(each, base + "?boxes=0", lambda s, _b: s == 200)
        for _status, body, headers in stored.values():
            assert body == images[frame_id]
            assert (headers["X-Event-Id"], headers["X-Frame-Id"]) == (event_id, str(frame_id))
        drawn = await asyncio.to_thread(each, base, lambda s, _b: s == 200)
        bodies = {body for _, body, _ in drawn.values()}
        assert len(bodies) == 1 and next(iter(bodies)).startswith(b"\xff\xd8"), bodies
        assert bodies != {images[frame_id]}  # the box and label are drawn on it

    def indexed(status: int, body: bytes) -> bool:
        return status == 200 and "\nvae_gateway_events_indexed 2.0\n" in body.decode()

    await asyncio.to_thread(each, f"{http}/metrics", indexed)  # livemin: both hold both
    missing = await asyncio.to_thread(
        each, f"{http}/v1/events/e-none/snapshot.jpg", lambda _s, _b: True
    )
    assert {status for status, _, _ in missing.values()} == {404}
    for socket in watchers:
        await socket.close()


def _children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_dead_child_is_restarted_and_a_killed_parent_takes_its_children(stack: Stack) -> None:
    gateway = two_process_gateway(stack)
    parent = gateway.pid
    _wait(lambda: len(_children_of(parent)) == 2, "two children")
    first = _children_of(parent)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    _wait(
        lambda: victim not in _children_of(parent) and len(_children_of(parent)) == 2,
        "the killed child replaced",
    )
    each(gateway.http + "/readyz", lambda status, _body: status == 200)
    assert "exited with code -9" in gateway.log(200) and "restarting it" in gateway.log(200)

    children = _children_of(parent)
    os.kill(parent, signal.SIGKILL)
    _wait(lambda: not any(_alive(pid) for pid in children), "children outliving the parent")
