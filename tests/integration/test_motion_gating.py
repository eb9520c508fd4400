"""Motion gating through the real pipeline: a still stretch skips the model between
keyframes, its records carry the last inferred objects, and the first moving frame is
inferred with its own objects."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simplejpeg

from client import IngestClient, subscribe
from pipeline import config
from pipeline.inference.backends import create_backend
from pipeline.inference.detector import Detector
from pipeline.inference.labels import COCO_CLASSES
from pipeline.serde import detected_objects
from tests.conftest import authed, ws_url
from tests.sample_clip import sample_frames

pytestmark = pytest.mark.integration

STILL, MOVING = 12, 4
FRAME_US = 100_000  # the clip's 10 fps, in capture time


def clip_jpegs(media: Path) -> list[bytes]:
    """A still of the sample clip (frame 0) with fresh sensor noise each time, then the
    clip's next frames, where the people walk on."""
    frames = sample_frames(media, MOVING + 1)
    rng = np.random.default_rng(7)
    still = [
        np.clip(frames[0] + rng.normal(0, 4, frames[0].shape), 0, 255).astype(np.uint8)
        for _ in range(STILL)
    ]
    return [simplejpeg.encode_jpeg(np.ascontiguousarray(f), quality=85) for f in still + frames[1:]]


def metric(http: str, name: str) -> float:
    with urllib.request.urlopen(authed(f"{http}/metrics"), timeout=5) as response:
        text = response.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


async def test_still_frames_skip_the_model_and_the_first_moving_frame_is_inferred(
    start_gateway: Any, start_worker: Any, media: Path
) -> None:
    worker = start_worker(VAE_WORKER_KEYFRAME_S="0.5")
    gateway = start_gateway()
    url = ws_url(gateway)
    jpegs = clip_jpegs(media)
    feed = subscribe(url, ["gate-1"])
    received: list[dict[str, Any]] = []

    async def collect() -> None:
        async for message in feed:
            received.append(message)
            if len(received) == len(jpegs):
                return

    collector = asyncio.create_task(collect())
    start_us = time.time_ns() // 1000 - 60_000_000
    async with IngestClient(url, "gate-1", ack=True) as camera:
        for frame_id, data in enumerate(jpegs):
            await camera.send(data, frame_id, capture_ts_us=start_us + frame_id * FRAME_US)
            await camera.receive()
    await asyncio.wait_for(collector, timeout=90)
    await feed.aclose()

    assert [m["frame_id"] for m in received] == list(range(len(jpegs)))
    inferred = [m["frame_id"] for m in received if m["inferred"]]
    # The first frame; keyframes 0.5 s of capture time apart; then every moving frame.
    assert inferred == [0, 5, 10, *range(STILL, STILL + MOVING)]
    last: list[dict[str, Any]] = []
    for message in received:
        if message["inferred"]:
            last = message["objects"]
            assert message["timings"]["batch_size"] >= 1
        else:
            assert message["objects"] == last  # carried from the frame last inferred
            assert message["timings"]["inference_ms"] == 0.0
    assert any(o["label"] == "person" for o in received[1]["objects"])

    # The first moving frame's objects are its own: what the model finds in it alone.
    detector = Detector(create_backend(config.load().model, max_batch=1))
    found = detector.detect([jpegs[STILL]])[0]
    assert found is not None
    own = detected_objects(found, COCO_CLASSES)
    first_moving = received[STILL]["objects"]
    assert [o["label"] for o in first_moving] == [o["label"] for o in own]
    for got, want in zip(first_moving, own, strict=True):
        assert got["box"] == pytest.approx(
            [want["x1"], want["y1"], want["x2"], want["y2"]], abs=0.2
        )

    assert metric(worker.http, "vae_worker_frames_inferred_total") == len(inferred)
    assert metric(worker.http, "vae_worker_frames_gated_total") == len(jpegs) - len(inferred)
