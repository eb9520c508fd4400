"""Promised gateway and readiness paths, against real processes: /readyz answering 503,
the producer queue refusing with `overloaded` while the broker is paused (and ending an
ordered socket), the bound of 1024 frames awaiting the broker per socket, and a frame sent
in fragments."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from client import GatewayError, IngestClient
from pipeline.kafka.admin import ensure_topics
from pipeline.protocol.envelope import build_envelope
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.conftest import AUTH, Service, launch_gateway, ws_url
from tests.kafka_tools import read_topic

pytestmark = pytest.mark.integration


def _ready(service: Service) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(service.http + "/readyz", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, "not listening yet"


def _wait_for(condition: Any, timeout: float, what: str, service: Service) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or service.process.poll() is not None:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{service.log()}")
        time.sleep(0.1)


@contextlib.contextmanager
def _stopped(pid: int) -> Iterator[None]:
    """The process SIGSTOPped for the block, and running again after it whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _small_queue_gateway(own_stack: Any) -> Service:
    """A gateway whose producer queue (1 MB) a few frames of dog.jpg fill; a frame that
    finds no room within 300 ms is refused with `overloaded`."""
    return launch_gateway(
        own_stack,
        VAE_GATEWAY_PRODUCER_QUEUE_KBYTES="1024",
        VAE_GATEWAY_BACKPRESSURE_TIMEOUT_MS="300",
    )


def _tiny_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 140, 30)).save(out, "JPEG")
    return out.getvalue()


def test_readyz_answers_503_until_the_topics_exist(stack: Any) -> None:
    missing = f"{stack.settings.topics.frames}-later"
    gateway = launch_gateway(
        stack, wait=False, VAE_TOPICS_CREATE="false", VAE_TOPICS_FRAMES=missing
    )
    seen: list[tuple[int, str]] = []
    # The first answers may say "starting": wait for the readiness check's own verdict.
    _wait_for(
        lambda: seen.append(_ready(gateway)) or "topics missing" in seen[-1][1],
        60,
        "a 503 naming the missing topic",
        gateway,
    )
    assert seen[-1][0] == 503
    assert "topics missing" in seen[-1][1] and missing in seen[-1][1]
    settings = stack.settings
    topics = engine_topics(type(settings.topics)(**{**vars(settings.topics), "frames": missing}))
    ensure_topics(settings.kafka, topics.all())
    _wait_for(lambda: _ready(gateway)[0] == 200, 30, "ready once created", gateway)


def test_worker_readyz_answers_503_until_it_joined(stack: Any, start_worker: Any) -> None:
    worker = start_worker(wait=False)
    _wait_for(lambda: _ready(worker)[0] == 503, 60, "a 503 while joining", worker)
    assert "joining" in _ready(worker)[1] or _ready(worker)[0] == 200
    _wait_for(lambda: _ready(worker)[0] == 200, 90, "ready once joined", worker)


async def test_paused_broker_gets_overloaded_then_recovers(own_stack: Any, dog_jpeg: bytes) -> None:
    """With the broker SIGSTOPped the producer queue fills; past the backpressure bound the
    gateway refuses with `overloaded`; once the broker runs again, frames are acked again."""
    gateway = _small_queue_gateway(own_stack)
    broker_pid = own_stack.own_broker.pid
    refused_after: int | None = None
    with _stopped(broker_pid):
        async with IngestClient(ws_url(gateway), "cam-over", ack=True) as cam:
            receiving = asyncio.create_task(cam.receive())
            for frame_id in range(200):  # 1 MB queue, 160 kB frames: refused long before
                await cam.send(dog_jpeg, frame_id)
                await asyncio.wait([receiving], timeout=0.05)
                if receiving.done():
                    break
            with pytest.raises(GatewayError) as refused:
                await asyncio.wait_for(receiving, 10)
            assert refused.value.code == "overloaded", refused.value
            refused_after = frame_id
            os.kill(broker_pid, signal.SIGCONT)
            # Everything queued before the refusal is delivered, and new frames are acked.
            acked = set()
            await cam.send(dog_jpeg, 1000)
            while 1000 not in acked:
                try:
                    acked.add((await asyncio.wait_for(cam.receive(), 60)).frame_id)
                except GatewayError as exc:
                    assert exc.code == "overloaded", exc  # later frames of the burst
    assert refused_after is not None and refused_after < 50
    assert gateway.metric('vae_gateway_frames_rejected_total{reason="overloaded"}') >= 1
    assert gateway.metric('vae_gateway_frames_rejected_total{reason="produce_failed"}') == 0


async def test_an_ordered_socket_ends_at_a_refusal_after_acking_the_frames_before_it(
    own_stack: Any, dog_jpeg: bytes
) -> None:
    """?ordered=1: after `overloaded` nothing more is read, the frames before the refused one
    are acked once the broker takes them, then the socket closes with 1013 (try again
    later): a client that sends the refused frame again keeps its stream's order."""
    gateway = _small_queue_gateway(own_stack)
    broker_pid = own_stack.own_broker.pid
    with _stopped(broker_pid):
        async with IngestClient(ws_url(gateway), "cam-ordered", ack=True, ordered=True) as cam:
            assert cam.hello["ordered"] is True
            for frame_id in range(12):  # 1 MB queue, 160 kB frames: refused within 12
                await cam.send(dog_jpeg, frame_id)
            with pytest.raises(GatewayError) as refused:
                await asyncio.wait_for(cam.receive(), 30)
            assert refused.value.code == "overloaded", refused.value
            first_refused = refused.value.frame_id
            assert first_refused is not None and 0 < first_refused < 12
            os.kill(broker_pid, signal.SIGCONT)
            acks = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    acks.append((await asyncio.wait_for(cam.receive(), 60)).frame_id)
            assert acks == list(range(first_refused))  # nothing after the refused frame
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013


async def test_a_socket_stops_reading_at_1024_frames_awaiting_the_broker(own_stack: Any) -> None:
    # No per-stream rate limit: this socket sends 1,100 frames at once on purpose.
    gateway = launch_gateway(own_stack, VAE_GATEWAY_MAX_FPS_PER_STREAM="0")
    jpeg, total = _tiny_jpeg(), 1100
    broker_pid = own_stack.own_broker.pid
    with _stopped(broker_pid):
        async with IngestClient(ws_url(gateway), "cam-many", ack=True) as cam:

            async def send_all() -> None:
                for frame_id in range(total):
                    await cam.send(jpeg, frame_id)

            sender = asyncio.create_task(send_all())
            received = "vae_gateway_frames_received_total"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            # 1024 frames awaiting the broker: then the socket is not read any more (what
            # was already read waits unserved, and uncounted, for acks to catch up).
            bound = 1024
            while gateway.metric(received) < bound:
                assert loop.time() < deadline, gateway.metric(received)
                await asyncio.sleep(0.1)
            for _ in range(10):
                assert gateway.metric(received) == bound
                await asyncio.sleep(0.1)
            os.kill(broker_pid, signal.SIGCONT)
            await asyncio.wait_for(sender, 60)
            acks = [(await asyncio.wait_for(cam.receive(), 60)).frame_id for _ in range(total)]
            assert acks == list(range(total))


async def test_a_frame_sent_in_fragments_is_one_frame(stack: Any, dog_jpeg: bytes) -> None:
    """Ingest reads WebSocket frames itself (no recv()): a message in continuation frames
    is put together, a fragmented text message is still refused, and the record written is
    the whole JPEG."""
    gateway = launch_gateway(stack)
    url = f"{ws_url(gateway)}/v1/ingest/cam-frag?ack=1"
    message = build_envelope(5, time.time_ns() // 1000, dog_jpeg)
    third = len(message) // 3
    async with connect(url, additional_headers=AUTH) as cam:
        assert json.loads(await cam.recv())["type"] == "hello"
        await cam.send([message[:third], message[third : 2 * third], message[2 * third :]])
        ack = json.loads(await asyncio.wait_for(cam.recv(), 30))
        assert (ack["type"], ack["frame_id"]) == ("ack", 5), ack
        await cam.send(["not ", "a frame"])
        refused = json.loads(await asyncio.wait_for(cam.recv(), 30))
        assert (refused["type"], refused["code"]) == ("error", "expected_binary"), refused
        await cam.send(build_envelope(6, time.time_ns() // 1000, dog_jpeg))
        ack = json.loads(await asyncio.wait_for(cam.recv(), 30))
        assert (ack["type"], ack["frame_id"]) == ("ack", 6), ack
    topics = engine_topics(stack.settings.topics)
    records = await asyncio.to_thread(
        read_topic, stack.settings.kafka, topics.frames.name, lambda found: len(found) >= 2
    )
    decoder = topics.frames.reader(LocalSchemaIds())
    images = {
        decoder.decode(r.value)["frame_id"]: decoder.decode(r.value)["image"] for r in records
    }
    assert images == {5: dog_jpeg, 6: dog_jpeg}
