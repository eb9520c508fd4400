"""The gateway's limits against a real gateway with small ones: frames per second per
stream, connections per client, subscribers per token, the handshake's time and the
request head's size. Each refusal is answered and counted."""

from __future__ import annotations

import asyncio
import io
import socket
import time
import urllib.request
from typing import Any

import pytest
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from client import GatewayError, IngestClient
from pipeline.auth.tokens import issue
from tests.conftest import TEST_SECRET, Service, authed, ws_url

pytestmark = pytest.mark.integration

SCOPES = ("ingest:*", "subscribe:*")


def limited(gateway: Service) -> dict[str, float]:
    with urllib.request.urlopen(authed(gateway.http + "/metrics"), timeout=5) as reply:
        text = reply.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith(("vae_gateway_limited_total{", "vae_gateway_frames_rejected_total{")):
            name, value = line.rsplit(" ", 1)
            found[name.split('"')[1]] = float(value)
    return found


async def test_a_stream_over_its_frame_rate_is_refused_frame_by_frame(
    start_gateway: Any, dog_jpeg: bytes
) -> None:
    gateway = start_gateway(VAE_GATEWAY_MAX_FPS_PER_STREAM="5")
    accepted = refused = 0
    answered: list[int | None] = []
    started = time.monotonic()
    async with IngestClient(ws_url(gateway), "fast", ack=True) as cam:
        for frame_id in range(20):
            await cam.send(dog_jpeg, frame_id)
        for _ in range(20):
            try:
                answered.append((await cam.receive()).frame_id)
                accepted += 1
            except GatewayError as exc:
                assert exc.code == "rate_limited", exc
                answered.append(exc.frame_id)  # named, so a resending client can retry it
                refused += 1
    elapsed = time.monotonic() - started
    assert sorted(answered, key=lambda f: -1 if f is None else f) == list(range(20))
    # A bucket of one second's worth (5), refilled at 5/s while the frames went out.
    assert 5 <= accepted <= 5 + 5 * elapsed + 1 and refused == 20 - accepted
    assert (await asyncio.to_thread(limited, gateway))["rate_limited"] == refused


async def test_an_ordered_socket_ends_at_its_first_rate_limited_frame(start_gateway: Any) -> None:
    """?ordered=1: the first `rate_limited` refusal names its frame, the frames before it are
    acked, nothing after it is served (nor counted), and the socket closes with 1013. Small
    frames: the 20 arrive together, most of them read in the same read as the refused one."""
    gateway = start_gateway(VAE_GATEWAY_MAX_FPS_PER_STREAM="5")
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 140, 30)).save(out, "JPEG")
    jpeg = out.getvalue()
    acks: list[int] = []
    refusals: list[GatewayError] = []
    async with IngestClient(ws_url(gateway), "fast-ordered", ack=True, ordered=True) as cam:
        for frame_id in range(20):
            await cam.send(jpeg, frame_id)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                try:
                    acks.append((await asyncio.wait_for(cam.receive(), 30)).frame_id)
                except GatewayError as exc:
                    refusals.append(exc)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
    assert [(r.code, r.frame_id) for r in refusals] == [("rate_limited", len(acks))], refusals
    assert 5 <= len(acks) < 20, acks  # a bucket of one second's worth, refilled at 5/s
    assert acks == list(range(len(acks)))
    assert (await asyncio.to_thread(limited, gateway))["rate_limited"] == 1
    received = await asyncio.to_thread(gateway.metric, "vae_gateway_frames_received_total")
    assert received == len(acks) + 1  # the frames behind the refused one were never served


async def open_subscriber(url: str, token: str) -> ClientConnection | int:
    try:
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"})
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.recv()  # hello
    return ws


async def test_connections_per_client_and_subscribers_per_token_are_capped(
    start_gateway: Any,
) -> None:
    gateway = start_gateway(
        VAE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT="4", VAE_GATEWAY_MAX_SUBSCRIBERS_PER_TOKEN="2"
    )
    url = f"{ws_url(gateway)}/v1/subscribe?streams=*"
    a, b = issue(TEST_SECRET, SCOPES, 600), issue(TEST_SECRET, SCOPES, 600)
    opened = [await open_subscriber(url, a), await open_subscriber(url, a)]
    assert await open_subscriber(url, a) == 429  # a third with the same token
    opened += [await open_subscriber(url, b), await open_subscriber(url, b)]
    assert all(isinstance(ws, ClientConnection) for ws in opened)
    assert await open_subscriber(url, b) == 503  # a fifth connection from 127.0.0.1
    for ws in opened:
        assert isinstance(ws, ClientConnection)
        await ws.close()
    counts = await asyncio.to_thread(limited, gateway)
    assert counts["subscribers_per_token"] == 1 and counts["connections_per_client"] == 1


def raw_exchange(port: int, data: bytes, wait_s: float) -> bytes:
    """Send ``data`` and read until the gateway closes (or ``wait_s`` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(4096):
            received += chunk
        return received


def test_a_trickled_handshake_is_dropped_and_a_huge_header_refused(
    start_gateway: Any,
) -> None:
    # The media timeout must stay under the handshake's (a settings check).
    gateway: Service = start_gateway(
        VAE_GATEWAY_HANDSHAKE_TIMEOUT_S="1", VAE_GATEWAY_MEDIA_TIMEOUT_S="0.5"
    )
    port = int(gateway.http.rsplit(":", 1)[1])
    started = time.monotonic()
    assert raw_exchange(port, b"GET /healthz HT", wait_s=10) == b""  # never finished: dropped
    assert time.monotonic() - started < 5
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n"
    answer = raw_exchange(port, huge, wait_s=10)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), answer[:200]
    counts = limited(gateway)
    assert counts["handshake_timeout"] == 1 and counts["request_head"] == 1
