"""What the viewer reads over HTTP: recent frames by id, the stream list with the gateway clock."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from client import IngestClient, subscribe
from tests.conftest import authed, ws_url

pytestmark = pytest.mark.integration


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same picture with a JPEG comment segment: a distinct, valid file per frame."""
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(authed(url), timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def test_recent_frames_of_watched_streams_are_served_by_id(
    start_gateway: Any, dog_jpeg: bytes
) -> None:
    gateway = start_gateway(VAE_GATEWAY_FRAME_HISTORY="4")
    url, http = ws_url(gateway), gateway.http
    feed = subscribe(url, ["watched"], include_notices=True)
    assert (await anext(feed))["type"] == "hello"  # from now on "watched" is watched
    frames = [with_comment(dog_jpeg, f"frame {i}") for i in range(6)]
    started_us = time.time_ns() // 1000
    async with (
        IngestClient(url, "watched", ack=True) as cam,
        IngestClient(url, "unwatched", ack=True) as other,
    ):
        for frame_id, jpeg in enumerate(frames):
            await cam.send(jpeg, frame_id)
            assert (await cam.receive()).frame_id == frame_id
        await other.send(dog_jpeg, 0)
        await other.receive()
    finished_us = time.time_ns() // 1000
    await feed.aclose()

    base = f"{http}/v1/streams"
    status, headers, body = await asyncio.to_thread(get, f"{base}/watched/frames/4.jpg")
    assert status == 200 and body == frames[4]
    assert headers["Content-Type"] == "image/jpeg" and headers["X-Frame-Id"] == "4"
    assert started_us <= int(headers["X-Frame-Ts-Us"]) <= finished_us
    # The newest frame by id and the latest frame are the same frame, same time.
    _, latest_headers, latest = await asyncio.to_thread(get, f"{base}/watched/latest.jpg")
    _, newest_headers, newest = await asyncio.to_thread(get, f"{base}/watched/frames/5.jpg")
    assert latest == newest == frames[5]
    assert latest_headers["X-Frame-Ts-Us"] == newest_headers["X-Frame-Ts-Us"]
    # Four are kept per stream; a stream nobody named keeps none (its latest frame only).
    for path, expected in [
        ("watched/frames/1.jpg", 404),
        ("watched/frames/2.jpg", 200),
        ("watched/frames/99.jpg", 404),
        ("unwatched/frames/0.jpg", 404),
        ("unwatched/latest.jpg", 200),
        ("watched/frames/x.jpg", 400),
    ]:
        status, _, body = await asyncio.to_thread(get, f"{base}/{path}")
        assert status == expected, (path, status, body)

    status, _, body = await asyncio.to_thread(get, base)
    listing = json.loads(body)
    assert status == 200 and listing["now_us"] >= finished_us
    assert [s["stream_id"] for s in listing["streams"]] == ["unwatched", "watched"]

    _, _, metrics = await asyncio.to_thread(get, f"{http}/metrics")
    held = sum(len(f) for f in frames[2:])
    assert f"vae_gateway_frame_history_bytes {float(held)}" in metrics.decode()
