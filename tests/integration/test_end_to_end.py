"""Frames pushed over WebSocket come back as detections over WebSocket: the whole loop."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import pytest

from client import IngestClient, subscribe
from tests.conftest import ws_url
from tests.reference import assert_matches_reference

pytestmark = pytest.mark.integration

STREAMS = ("cam-a", "cam-b", "cam-c")
FRAMES_PER_STREAM = 8


async def _push(url: str, stream_id: str, jpeg: bytes, count: int) -> list[float]:
    latencies = []
    async with IngestClient(url, stream_id, ack=True) as cam:
        for frame_id in range(count):
            await cam.send(jpeg, frame_id)
            ack = await cam.receive()
            assert ack.frame_id == frame_id
            latencies.append(ack.gateway_latency_ms)
            await asyncio.sleep(0.05)
    return latencies


async def test_three_streams_of_dog_jpg_come_back_in_order_with_reference_boxes(
    start_gateway: Any, start_worker: Any, dog_jpeg: bytes
) -> None:
    start_worker()
    gateway = start_gateway()
    url = ws_url(gateway)
    received: dict[str, list[dict[str, Any]]] = defaultdict(list)
    feed = subscribe(url, STREAMS, include_notices=True)
    hello = await anext(feed)
    assert hello == {"type": "hello", "endpoint": "subscribe", "streams": sorted(STREAMS)}

    async def collect() -> None:
        async for message in feed:
            received[message["stream_id"]].append(message)
            if all(len(received[s]) >= FRAMES_PER_STREAM for s in STREAMS):
                return

    collector = asyncio.create_task(collect())
    latencies = await asyncio.gather(*(_push(url, s, dog_jpeg, FRAMES_PER_STREAM) for s in STREAMS))
    await asyncio.wait_for(collector, timeout=90)
    await feed.aclose()

    assert all(latency > 0 for per_stream in latencies for latency in per_stream)
    for stream in STREAMS:
        messages = received[stream]
        assert [m["frame_id"] for m in messages] == list(range(FRAMES_PER_STREAM)), stream
        for message in messages:
            assert message["width"] == 768 and message["height"] == 576
            assert message["model"].startswith("yolox_nano/")
            assert message["capture_ts_us"] <= message["gateway_ts_us"] <= message["worker_ts_us"]
            assert_matches_reference(message["objects"])
            assert message["worker_ts_us"] <= time.time_ns() // 1000
