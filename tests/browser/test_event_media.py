"""An event's snapshot and clip, end to end: real broker, real model, real pixels, and
Debian's Chromium playing the clip.

The analytics clip (dog.jpg's car crossing a line) goes through gateway, worker and
analytics; a second stream of plain blue frames, on the same partition of vae.frames and
with the same capture times, goes in between. The first crossing's snapshot is its stored
frame with the box drawn (or bare, or cropped); its clip holds exactly clip-1's frames of
[start - 1 s, end + 1 s] and none of the other stream's, and Chromium plays it. A restarted
gateway finds the event again; one whose frames retention is shorter than the event's age
answers 410 with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from confluent_kafka import Consumer, TopicPartition
from PIL import Image
from playwright.sync_api import Page

from client import IngestClient
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.analytics_clip import H, W, make_clip, rules_file
from tests.browser.conftest import screenshot
from tests.conftest import TEST_TOKEN, Service, Stack, launch_gateway, ws_url

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

BEFORE_S = AFTER_S = 1.0
GATEWAY_ENV = {
    "VAE_GATEWAY_CLIP_BEFORE_S": str(BEFORE_S),
    "VAE_GATEWAY_CLIP_AFTER_S": str(AFTER_S),
    "VAE_GATEWAY_MAX_FPS_PER_STREAM": "0",  # the clip is sent as fast as the gateway takes it
}
BLUE = (20, 40, 230)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a thread of its own (Playwright's sync API holds this one's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def get(url: str, token: str = TEST_TOKEN, **headers: str) -> tuple[int, dict[str, str], bytes]:
    sent = {
        "Authorization": f"Bearer {token}",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    request = urllib.request.Request(url, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def partner_on_partition(stream_id: str, partitions: int) -> str:
    """A stream id that librdkafka's default partitioner (CRC32 of the key) puts on the same
    partition as ``stream_id`` (the acks check it)."""
    wanted = zlib.crc32(stream_id.encode()) % partitions
    return next(
        name
        for name in (f"side-{i}" for i in range(1000))
        if zlib.crc32(name.encode()) % partitions == wanted
    )


def solid_jpeg(rgb: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (W, H), rgb).save(out, format="JPEG", quality=90)
    return out.getvalue()


async def push_interleaved(
    url: str, streams: dict[str, list[bytes]], ts: list[int]
) -> dict[str, set[int]]:
    """Frame i of every stream, then frame i+1 of every stream, ...; each acked. The
    partitions each stream's frames went to."""
    partitions: dict[str, set[int]] = {name: set() for name in streams}
    async with contextlib.AsyncExitStack() as opened:
        clients = {
            name: await opened.enter_async_context(IngestClient(url, name, ack=True))
            for name in streams
        }
        for i, capture in enumerate(ts):
            for name, frames in streams.items():
                await clients[name].send(frames[i], i, capture_ts_us=capture)
                ack = await clients[name].receive()
                assert ack.frame_id == i
                partitions[name].add(ack.partition)
    return partitions


def first_event(stack: Stack, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first record of the events topic that ``wanted`` accepts (120 s at most)."""
    topic = engine_topics(stack.settings.topics).events
    decoder = topic.reader(LocalSchemaIds())
    consumer = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": uuid.uuid4().hex})
    consumer.assign([TopicPartition(topic.name, p, -2) for p in range(topic.partitions)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            event = dict(decoder.decode(message.value()))
            if wanted(event):
                return event
    finally:
        consumer.close()
    raise AssertionError("no such event on the events topic in 120 s")


def wait_indexed(gateway: Service, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while gateway.metric("vae_gateway_events_indexed") < 1:
        assert time.monotonic() < deadline, f"no event indexed:\n{gateway.log()}"
        time.sleep(0.2)


def pixels(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.int16)


def expected_crop(box: tuple[float, ...]) -> tuple[int, int]:
    """README: the box grown by 10% of its width and height on each side (at least 4 px),
    within the frame."""
    x1, y1, x2, y2 = box
    mx, my = max(4, 0.1 * (x2 - x1)), max(4, 0.1 * (y2 - y1))
    left, top = max(0, math.floor(x1 - mx)), max(0, math.floor(y1 - my))
    right, bottom = min(W, math.ceil(x2 + mx)), min(H, math.ceil(y2 + my))
    return right - left, bottom - top


PLAY_JS = """async (src) => {
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.src = src;
  document.body.appendChild(video);
  const started = Date.now();
  while (video.readyState < 2 && !video.error && Date.now() - started < 30000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {readyState: video.readyState, duration: video.duration, width: video.videoWidth,
          height: video.videoHeight, error: video.error && video.error.message,
          canPlay: video.canPlayType('video/mp4; codecs="avc1.64001f"')};
}"""


def test_an_events_snapshot_and_clip_come_from_the_frames_topic_and_play_in_chromium(
    stack: Stack,
    start_worker: Any,
    start_analytics: Any,
    page: Page,
    media: Path,
    tmp_path: Path,
) -> None:
    rules = rules_file(tmp_path)
    worker = start_worker(wait=False)
    analytics = start_analytics(wait=False, VAE_ANALYTICS_RULES=str(rules))
    gateway = launch_gateway(stack, **GATEWAY_ENV)
    worker.wait_http("/readyz", timeout=90)
    analytics.wait_log("[^Worker]: Ready", timeout=90)

    clip = make_clip((media / "dog.jpg").read_bytes())
    partitions = engine_topics(stack.settings.topics).frames.partitions
    side = partner_on_partition("clip-1", partitions)
    streams = {"clip-1": clip.frames, side: [solid_jpeg(BLUE)] * len(clip.frames)}
    placed = run(push_interleaved(ws_url(gateway), streams, clip.capture_ts_us))
    assert placed["clip-1"] == placed[side] and len(placed["clip-1"]) == 1, placed

    event = first_event(stack, lambda e: e["kind"] == "line_crossed")
    assert event["stream_id"] == "clip-1" and event["frame_offset"] >= 0
    assert {event["frame_partition"]} == placed["clip-1"]
    wait_indexed(gateway)
    base = f"{gateway.http}/v1/events/{event['event_id']}"
    box = (event["x1"], event["y1"], event["x2"], event["y2"])
    stored = clip.frames[event["frame_id"]]

    # The snapshot: the stored frame, the box drawn along its edges and nothing else changed.
    status, headers, snapshot = get(f"{base}/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg", snapshot[:300]
    assert int(headers["X-Frame-Id"]) == event["frame_id"]
    before, after = pixels(stored), pixels(snapshot)
    assert after.shape == before.shape == (H, W, 3)
    diff = np.abs(after - before).max(axis=2)
    x1, y1, x2, y2 = (
        min(max(round(v), 0), lim - 1) for v, lim in zip(box, (W, H, W, H), strict=True)
    )
    rows, columns = slice(y1 + 5, y2 - 5), slice(x1 + 5, x2 - 5)
    assert np.median(diff[rows, x1 : x1 + 2].max(axis=1)) > 40, "no box along its left edge"
    assert np.median(diff[rows, x2 - 1 : x2 + 1].max(axis=1)) > 40, "no box along its right edge"
    assert np.median(diff[y2 - 1 : y2 + 1, columns].max(axis=0)) > 40, "no box along its bottom"
    away = np.ones((H, W), bool)
    away[max(0, y1 - 40) : y2 + 8, max(0, x1 - 8) : x2 + 8] = False
    assert diff[away].max() <= 24 and diff[away].mean() < 1.5  # the JPEG round trip only
    status, headers, bare = get(f"{base}/snapshot.jpg?boxes=0")
    assert status == 200 and bare == stored  # the frame itself, byte for byte
    status, headers, crop = get(f"{base}/snapshot.jpg?crop=1")
    assert status == 200 and Image.open(io.BytesIO(crop)).size == expected_crop(box)

    # The clip: clip-1's frames of [start - 1 s, end + 1 s], none of the other stream's.
    t0 = event["start_ts_us"] - int(BEFORE_S * 1e6)
    t1 = event["end_ts_us"] + int(AFTER_S * 1e6)
    expected = [t for t in clip.capture_ts_us if t0 <= t <= t1]
    assert len(expected) >= 15
    status, headers, mp4 = get(f"{base}/clip.mp4")
    assert status == 200 and headers["Content-Type"] == "video/mp4", mp4[:300]
    assert int(headers["X-Clip-Frames"]) == len(expected)
    assert int(headers["X-Clip-Start-Us"]) == expected[0]
    assert int(headers["X-Clip-End-Us"]) == expected[-1]
    with av.open(io.BytesIO(mp4)) as container:
        assert container.format.name.startswith("mov,mp4")
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [
            (f.pts * f.time_base, f.to_ndarray(format="rgb24")) for f in container.decode(stream)
        ]
    assert len(decoded) == len(expected)
    times = [round(float(t) * 1e6) for t, _ in decoded]
    assert times == pytest.approx([t - expected[0] for t in expected], abs=12)
    for _, rgb in decoded:  # clip-1's grey floor, never the other stream's blue
        red, green, blue = rgb.reshape(-1, 3).mean(axis=0)
        assert blue - red < 40, (red, green, blue)

    # Byte ranges, as a browser asks a video (Safari plays an MP4 only from them): the same
    # bytes as the whole clip, from the clip cache, without encoding again.
    assert headers["Accept-Ranges"] == "bytes" and headers["ETag"]
    size = len(mp4)
    status, part, head = get(f"{base}/clip.mp4", Range="bytes=0-99")
    assert (status, head, part["Content-Range"]) == (206, mp4[:100], f"bytes 0-99/{size}")
    assert part["Content-Length"] == "100" and part["ETag"] == headers["ETag"]
    status, part, tail = get(f"{base}/clip.mp4", Range="bytes=-64")
    assert (status, tail, part["Content-Range"]) == (
        206,
        mp4[-64:],
        f"bytes {size - 64}-{size - 1}/{size}",
    )
    status, part, rest = get(f"{base}/clip.mp4", Range="bytes=100-", If_Range=headers["ETag"])
    assert (status, head + rest) == (206, mp4)
    status, part, _ = get(f"{base}/clip.mp4", Range=f"bytes={size}-")
    assert (status, part["Content-Range"]) == (416, f"bytes */{size}")
    status, _, whole = get(f"{base}/clip.mp4", Range="bytes=0-99", If_Range='"other"')
    assert (status, whole) == (200, mp4)  # If-Range naming other bytes: the whole clip

    # Chromium plays it (the token in the URL, as a <video> element sends no header).
    page.goto(f"{gateway.http}/healthz")
    played = page.evaluate(PLAY_JS, f"{base}/clip.mp4?token={TEST_TOKEN}")
    assert played["error"] is None and played["readyState"] >= 2, played
    assert played["duration"] > (expected[-1] - expected[0]) / 1e6, played
    assert (played["width"], played["height"]) == (W, H)
    page.evaluate(
        "(src) => { const i = document.createElement('img'); i.src = src;"
        " document.body.appendChild(i); }",
        f"{base}/snapshot.jpg?token={TEST_TOKEN}",
    )
    page.wait_for_function("() => document.querySelector('img')?.complete")
    screenshot(page, "event-media")

    # An unknown id: 404 and why, as JSON.
    status, _, body = get(f"{gateway.http}/v1/events/{uuid.uuid4()}/clip.mp4")
    assert status == 404 and json.loads(body)["error"] == "unknown_event"

    # A restarted gateway finds the event again; one whose frames retention is shorter than
    # the event's age answers 410 with the reason. One media request at a time: a burst of
    # clip requests gets 503 with Retry-After for those over it.
    gateway.stop()
    again = launch_gateway(stack, wait=False, VAE_GATEWAY_MEDIA_CONCURRENCY="1", **GATEWAY_ENV)
    expired = launch_gateway(stack, wait=False, VAE_TOPICS_FRAMES_RETENTION_MS="1")
    for restarted in (again, expired):
        restarted.wait_http("/readyz")
        wait_indexed(restarted)
    status, _, snapshot_again = get(f"{again.http}/v1/events/{event['event_id']}/snapshot.jpg")
    assert status == 200 and snapshot_again == snapshot
    status, _, body = get(f"{expired.http}/v1/events/{event['event_id']}/snapshot.jpg")
    answer = json.loads(body)
    assert status == 410 and answer["error"] == "past_retention", answer
    assert "VAE_TOPICS_FRAMES_RETENTION_MS" in answer["message"]

    barrier = threading.Barrier(6)

    def burst(_: int) -> tuple[int, dict[str, str], bytes]:
        barrier.wait()
        return get(f"{again.http}/v1/events/{event['event_id']}/clip.mp4")

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(burst, range(6)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    assert set(statuses) == {200, 503}
    for status, headers, body in answers:
        if status == 503:
            assert headers["Retry-After"] == "1" and json.loads(body)["error"] == "busy"
        else:
            assert headers["X-Clip-Frames"] == str(len(expected)) and body[4:8] == b"ftyp"
