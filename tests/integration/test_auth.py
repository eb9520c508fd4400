"""Every HTTP and WebSocket endpoint of a real gateway, asked with no token, an expired one,
a forged one, one for another stream and the right one, by header and by ?token=: the
answer of each. A token scoped to cam-1 never yields anything of cam-2 (an event's media
of another stream answer 404, as an unknown event id does)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from client import Ack, IngestClient
from pipeline import children
from pipeline.auth.tokens import issue
from pipeline.runtime import free_port
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.conftest import REPO, TEST_SECRET, TEST_TOKEN, Service, Stack, authed, ws_url
from tests.records import event

pytestmark = pytest.mark.integration

CAM_1 = ("ingest:cam-1", "subscribe:cam-1", "metrics")
CAM_2 = ("ingest:cam-2", "subscribe:cam-2")
TOKENS = {
    "none": "",
    "expired": issue(TEST_SECRET, CAM_1, 60, now=time.time() - 7200),
    "forged": issue("an-attackers-own-secret-that-is-long-enough", CAM_1, 3600),
    "other stream": issue(TEST_SECRET, CAM_2, 3600),
    "right": issue(TEST_SECRET, CAM_1, 3600),
}
REFUSED = {"none": 401, "expired": 401, "forged": 401, "other stream": 403}

# (endpoint, what the right token gets, what a token for another stream gets)
HTTP = [
    ("/v1/streams", 200, 200),  # the listing: filtered (checked below)
    ("/v1/streams/cam-1/latest.jpg", 200, 403),
    ("/v1/streams/cam-1/frames/0.jpg", 200, 403),
    ("/metrics", 200, 403),
    ("/v1/streams/cam-1/counts", 200, 403),
    ("/v1/rules", 403, 403),  # reading the rules takes admin (checked below with one)
    ("/v1/rules?format=json", 403, 403),  # the same, as JSON (the viewer's)
]
OPEN_HTTP = ["/healthz", "/readyz", "/", "/js/main.js"]
WS = [
    ("/v1/ingest/cam-1", 101, 403),
    ("/v1/subscribe?streams=cam-1", 101, 403),
    ("/v1/subscribe?streams=cam-1,cam-2", 403, 403),
    ("/v1/subscribe?streams=*", 101, 101),  # filtered to what the token may see
    ("/v1/events?streams=cam-1", 101, 403),
    ("/v1/events?streams=cam-1,cam-2", 403, 403),
    ("/v1/events?streams=*", 101, 101),  # filtered to what the token may see
    ("/v1/rules", 403, 403),  # saving rules takes admin (checked below with one)
]
ADMIN = issue(TEST_SECRET, ("admin",), 3600)


def http_status(url: str, token: str, how: str) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token and how == "header" else {}
    if token and how == "query":
        url += ("&" if "?" in url else "?") + f"token={token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def ws_status(url: str, token: str, how: str, **headers: str) -> int:
    extra = dict(headers)
    if token and how == "header":
        extra["Authorization"] = f"Bearer {token}"
    if token and how == "query":
        url += ("&" if "?" in url else "?") + f"token={token}"
    try:
        async with connect(url, additional_headers=extra, open_timeout=10) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def write_event(stack: Stack, stream_id: str, frame: Ack) -> str:
    """An Event record of ``stream_id`` naming the stored frame ``frame`` (as the analytics
    writes them); its id."""
    writer = engine_topics(stack.settings.topics).events.writer(LocalSchemaIds())
    now_us = time.time_ns() // 1000
    record = event(
        stream_id,
        1,
        event_id=str(uuid.uuid4()),
        label="dog",
        class_id=16,
        start_ts_us=now_us,
        end_ts_us=now_us,
        frame_id=frame.frame_id,
        score=0.8,
        x1=133.0,
        y1=207.0,
        x2=325.0,
        y2=542.0,
        frame_partition=frame.partition,
        frame_offset=frame.offset,
        trigger_frame_id=frame.frame_id,
    )
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    producer.produce(writer.topic, writer.value(record), writer.key(record))
    assert producer.flush(10) == 0
    return record["event_id"]


def wait_indexed(gateway: Service, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while gateway.metric("vae_gateway_events_indexed") < 1:
        assert time.monotonic() < deadline, f"the event was not indexed:\n{gateway.log()}"
        time.sleep(0.2)


def expected(case: str, right: int, other: int) -> int:
    if case == "right":
        return right
    if case == "other stream":
        return other
    return REFUSED[case]


feeds_ready: set[int] = set()


async def collect(url: str, token: str, into: list[dict[str, Any]]) -> None:
    """Append every detections message of a subscription to ``into``."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        feeds_ready.add(id(into))
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "detections":
                into.append(message)


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (60 s at most)."""
    async with asyncio.timeout(60):
        while not condition():  # noqa: ASYNC110 (the lists are filled by other tasks)
            await asyncio.sleep(0.05)


def get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.load(reply)


def get_text(url: str) -> str:
    with urllib.request.urlopen(authed(url), timeout=5) as reply:
        return str(reply.read().decode())


async def test_every_endpoint_answers_each_kind_of_token_as_it_should(
    stack: Stack, start_gateway: Any, start_worker: Any, dog_jpeg: bytes
) -> None:
    worker = start_worker(wait=False)
    gateway: Service = start_gateway(VAE_GATEWAY_ALLOWED_ORIGINS="http://allowed.example")
    worker.wait_http("/readyz", timeout=90)
    ws, http = ws_url(gateway), gateway.http

    # A `*` subscriber with cam-1's token sees cam-1 and nothing of cam-2, while one that
    # may see everything sees both. A second cam-1 frame is the marker: once its detections
    # reached the cam-1 subscriber, everything published before them had too.
    restricted: list[dict[str, Any]] = []
    everything: list[dict[str, Any]] = []
    feeds = [
        asyncio.create_task(collect(f"{ws}/v1/subscribe?streams=*", TOKENS["right"], restricted)),
        asyncio.create_task(collect(f"{ws}/v1/subscribe?streams=*", TEST_TOKEN, everything)),
    ]
    # A subscriber naming cam-1 makes the gateway hold its recent frames by id.
    named = {"Authorization": f"Bearer {TOKENS['right']}"}
    async with connect(f"{ws}/v1/subscribe?streams=cam-1", additional_headers=named) as watcher:
        assert json.loads(await watcher.recv())["type"] == "hello"
        await until(lambda: len(feeds_ready) == 2)
        async with IngestClient(ws, "cam-2", ack=True, token=TOKENS["other stream"]) as cam2:
            await cam2.send(dog_jpeg, 0)
            await cam2.receive()
        async with IngestClient(ws, "cam-1", ack=True, token=TOKENS["right"]) as cam1:
            await cam1.send(dog_jpeg, 0)
            stored = await cam1.receive()
            await until(lambda: {m["stream_id"] for m in everything} == {"cam-1", "cam-2"})
            await cam1.send(dog_jpeg, 1)
            await cam1.receive()
            await until(lambda: any(m["frame_id"] == 1 for m in restricted))
    for feed in feeds:
        feed.cancel()
    assert {m["stream_id"] for m in restricted} == {"cam-1"}, restricted
    # An event of cam-1 naming that frame: its snapshot and clip are cam-1's pictures. For
    # cam-2's token they are exactly as absent as an unknown id (it learns nothing).
    event_id = await asyncio.to_thread(write_event, stack, "cam-1", stored)
    await asyncio.to_thread(wait_indexed, gateway)
    media = [
        (f"/v1/events/{event_id}/snapshot.jpg", 200, 404),
        (f"/v1/events/{event_id}/snapshot.jpg?crop=1", 200, 404),
        (f"/v1/events/{event_id}/clip.mp4", 200, 404),
        (f"/v1/events/{uuid.uuid4()}/snapshot.jpg", 404, 404),
        (f"/v1/events/{uuid.uuid4()}/clip.mp4", 404, 404),
    ]

    failures = []
    for case, token in TOKENS.items():
        for how in ("header", "query"):
            for path, right, other in HTTP + media:
                got = await asyncio.to_thread(http_status, http + path, token, how)
                if got != expected(case, right, other):
                    failures.append(f"GET {path} [{case}, {how}]: {got}")
            for path in OPEN_HTTP:
                got = await asyncio.to_thread(http_status, http + path, token, how)
                if got != 200:
                    failures.append(f"GET {path} [{case}, {how}]: {got}, not open")
            for path, right, other in WS:
                got = await ws_status(ws + path, token, how)
                if got != expected(case, right, other):
                    failures.append(f"WS {path} [{case}, {how}]: {got}")
    assert not failures, "\n".join(failures)

    # Rules change what every analytics worker counts: an admin token may read and edit them.
    assert await asyncio.to_thread(http_status, f"{http}/v1/rules", ADMIN, "header") in (200, 404)
    rules_json = f"{http}/v1/rules?format=json"
    assert await asyncio.to_thread(http_status, rules_json, ADMIN, "query") in (200, 404)
    assert await ws_status(f"{ws}/v1/rules", ADMIN, "header") == 101

    # The listing shows each token only its own streams.
    for case, stream in (("right", "cam-1"), ("other stream", "cam-2")):
        listing = await asyncio.to_thread(get_json, f"{http}/v1/streams", TOKENS[case])
        assert [s["stream_id"] for s in listing["streams"]] == [stream]

    # Browsers: a page of a foreign origin may not open a socket; its own or an allowed may.
    right = TOKENS["right"]
    cam1 = f"{ws}/v1/subscribe?streams=cam-1"
    assert await ws_status(cam1, right, "query", Origin="http://evil.example") == 403
    assert await ws_status(cam1, right, "query", Origin="http://allowed.example") == 101
    assert await ws_status(cam1, right, "query", Origin=http) == 101

    metrics = await asyncio.to_thread(get_text, f"{http}/metrics")
    for reason in ("missing", "expired", "forged", "scope", "origin"):
        assert f'vae_gateway_auth_refused_total{{reason="{reason}"}}' in metrics, reason
    log = gateway.log(10_000)
    for token in TOKENS.values():
        assert not token or token not in log  # tokens are never logged


def test_auth_off_lets_anyone_in_and_says_so(stack: Stack, start_gateway: Any) -> None:
    gateway = start_gateway(VAE_AUTH="off", VAE_AUTH_SECRET="")
    assert http_status(f"{gateway.http}/v1/streams", "", "header") == 200
    assert "VAE_AUTH=off" in gateway.log()


def test_a_gateway_without_a_key_refuses_to_start_and_says_what_to_set(stack: Stack) -> None:
    env = stack.with_env(
        VAE_AUTH_SECRET="", VAE_GATEWAY_PORT=str(free_port()), VAE_GATEWAY_HOST="127.0.0.1"
    )
    child = children.spawn_vae(
        "gateway-nokey", ["gateway"], env=env, log_dir=stack.log_dir, cwd=REPO
    )
    try:
        assert child.process.wait(60) == 2
    finally:
        children.stop([child], grace_s=5)
    assert "VAE_AUTH_SECRET" in child.tail() and "vae token issue" in child.tail()
