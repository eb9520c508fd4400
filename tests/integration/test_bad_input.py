"""Bad frames get a clear error on their own socket; every other stream keeps working."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from client import GatewayError, IngestClient
from pipeline.protocol.envelope import build_envelope
from tests.conftest import Service, authed, ws_url

pytestmark = pytest.mark.integration

LIMIT = 200_000


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(authed(url), timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _metric(gateway: Service, sample: str) -> float:
    _, body, _ = _get(gateway.http + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


async def _expect_error(cam: IngestClient, code: str) -> None:
    with pytest.raises(GatewayError) as raised:
        await cam.receive()
    assert raised.value.code == code


async def _good_stream(url: str, jpeg: bytes, frames: int) -> int:
    acked = 0
    async with IngestClient(url, "cam-good", ack=True) as cam:
        for frame_id in range(frames):
            await cam.send(jpeg, frame_id)
            assert (await cam.receive()).frame_id == frame_id
            acked += 1
            await asyncio.sleep(0.02)
    return acked


async def test_bad_frames_are_refused_on_their_socket_only(
    start_gateway: Any, dog_jpeg: bytes
) -> None:
    gateway = start_gateway(VAE_GATEWAY_MAX_FRAME_BYTES=str(LIMIT))
    url = ws_url(gateway)
    good = asyncio.create_task(_good_stream(url, dog_jpeg, 30))

    async with IngestClient(url, "cam-bad", ack=True) as cam:
        assert cam.hello["max_frame_bytes"] == LIMIT
        await cam.ws.send(b"definitely not a jpeg")
        await _expect_error(cam, "not_jpeg")
        await cam.ws.send(b"\xff\xd8\xff" + bytes(LIMIT))
        await _expect_error(cam, "frame_too_large")
        await cam.ws.send(b"VAE\x01\x00\x00")
        await _expect_error(cam, "truncated_envelope")
        await cam.ws.send(dog_jpeg[: len(dog_jpeg) // 2])
        await _expect_error(cam, "truncated_jpeg")
        await cam.ws.send("a text message")
        await _expect_error(cam, "expected_binary")
        # The same socket still takes good frames.
        await cam.send(dog_jpeg[:LIMIT] if len(dog_jpeg) < LIMIT else dog_jpeg, 7)
        ack = await cam.receive()
        assert ack.frame_id == 7

    async with connect(url + "/v1/ingest/not%20ok!") as ws:
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "bad_request"
        assert "bad stream_id" in error["message"]
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    assert await good == 30
    for reason in (
        "not_jpeg",
        "frame_too_large",
        "truncated_envelope",
        "truncated_jpeg",
        "expected_binary",
    ):
        assert _metric(gateway, f'vae_gateway_frames_rejected_total{{reason="{reason}"}}') == 1
    assert _metric(gateway, "vae_gateway_frames_produced_total") == 31


async def test_http_endpoints(start_gateway: Any, dog_jpeg: bytes) -> None:
    gateway = start_gateway()
    assert _get(gateway.http + "/healthz")[0] == 200
    status, body, _ = _get(gateway.http + "/readyz")
    assert (status, body) == (200, b"ready\n")
    status, body, _ = _get(gateway.http + "/v1/ingest/cam-1")
    assert status == 426 and b"WebSocket" in body
    status, _, _ = _get(gateway.http + "/v1/streams/cam-1/latest.jpg")
    assert status == 404

    async with IngestClient(ws_url(gateway), "cam-1", ack=True) as cam:
        await cam.send(build_envelope(41, 1, dog_jpeg)[20:], 41)
        await cam.receive()

    status, body, _ = _get(gateway.http + "/v1/streams")
    streams = json.loads(body)["streams"]
    assert status == 200 and [s["stream_id"] for s in streams] == ["cam-1"]
    assert streams[0]["frame_id"] == 41 and streams[0]["width"] == 768
    status, body, headers = _get(gateway.http + "/v1/streams/cam-1/latest.jpg")
    assert status == 200 and body == dog_jpeg
    assert headers["Content-Type"] == "image/jpeg" and headers["X-Frame-Id"] == "41"
    status, body, headers = _get(gateway.http + "/metrics")
    assert status == 200 and b"vae_gateway_latency_seconds_bucket" in body
    status, body, headers = _get(gateway.http + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert _get(gateway.http + "/no-such-file.txt")[0] == 404
