"""Two workers share the partitions; SIGKILL one mid-stream and no frame is lost."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
from typing import Any

import pytest

from client import IngestClient, subscribe
from tests.conftest import Service, ws_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STREAMS = [f"cam-{i:02d}" for i in range(12)]
FRAMES_PER_STREAM = 30
FPS = 4.0


def _partitions(worker: Service) -> set[int]:
    with urllib.request.urlopen(worker.http + "/readyz", timeout=2) as response:
        text = response.read().decode()
    # "in group, partitions [0, 3, 5]"
    inside = text.split("[", 1)[1].split("]", 1)[0]
    return {int(p) for p in inside.split(",") if p.strip()}


def _wait_for_split(workers: list[Service], total: int, timeout: float = 60) -> list[set[int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = [_partitions(w) for w in workers]
        if all(owned) and sum(len(o) for o in owned) == total and not set.intersection(*owned):
            return owned
        time.sleep(0.5)
    raise AssertionError(f"partitions never split between the workers: {owned}")


async def _push(url: str, stream_id: str, jpeg: bytes) -> None:
    async with IngestClient(url, stream_id, ack=True) as cam:
        for frame_id in range(FRAMES_PER_STREAM):
            await cam.send(jpeg, frame_id)
            await cam.receive()  # acked: the frame is in Kafka
            await asyncio.sleep(1 / FPS)


async def test_sigkill_of_one_worker_loses_no_frame(
    stack: Any, start_gateway: Any, start_worker: Any, dog_jpeg: bytes
) -> None:
    doomed = start_worker("killed-worker")
    survivor = start_worker("worker")
    owned = _wait_for_split([doomed, survivor], stack.settings.topics.frames_partitions)
    assert owned[0] and owned[1]

    gateway = start_gateway()
    url = ws_url(gateway)
    seen: dict[str, set[int]] = {s: set() for s in STREAMS}
    producers_of: dict[str, set[str]] = {s: set() for s in STREAMS}
    feed = subscribe(url, STREAMS, include_notices=True)
    await anext(feed)

    async def collect() -> None:
        async for message in feed:
            seen[message["stream_id"]].add(message["frame_id"])
            producers_of[message["stream_id"]].add(message["worker"])
            if all(len(ids) == FRAMES_PER_STREAM for ids in seen.values()):
                return

    collector = asyncio.create_task(collect())
    pushers = asyncio.gather(*(_push(url, s, dog_jpeg) for s in STREAMS))
    await asyncio.sleep(FRAMES_PER_STREAM / FPS / 3)  # a third of the way through
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait()
    await pushers
    try:
        await asyncio.wait_for(collector, timeout=120)
    finally:
        await feed.aclose()

    missing = {
        s: sorted(set(range(FRAMES_PER_STREAM)) - ids)
        for s, ids in seen.items()
        if len(ids) < FRAMES_PER_STREAM
    }
    assert not missing, f"frames lost: {missing}\n{survivor.log()}"
    # The survivor took over the dead worker's streams after the kill.
    workers_seen = set().union(*producers_of.values())
    assert len(workers_seen) == 2, workers_seen
