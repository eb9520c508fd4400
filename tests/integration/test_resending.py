"""The resending client against a real gateway that is SIGKILLed and restarted mid-stream:
every frame handed to the client is acked and detected, the unacked ones through resend."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from client import ResendingClient
from pipeline.runtime import free_port
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.conftest import launch_gateway, ws_url
from tests.faults import FaultRow, FaultTable
from tests.kafka_tools import read_topic

pytestmark = pytest.mark.integration
faults = pytest.mark.faults

STREAM = "cam-resend"


async def _until(condition: Any, limit_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        if condition():
            return
        assert loop.time() < deadline, f"{what}: not within {limit_s:.0f} s"
        await asyncio.sleep(0.02)


@faults
async def test_gateway_sigkill_and_restart_loses_no_frame_handed_over(
    stack: Any, start_worker: Any, dog_jpeg: bytes, fault_table: FaultTable
) -> None:
    port = free_port()
    gateway = launch_gateway(stack, port=port)
    start_worker()
    total, stalled = 40, 5
    async with ResendingClient(ws_url(gateway), STREAM, backoff_s=0.1, max_backoff_s=1.0) as cam:
        for frame_id in range(15):
            cam.put(dog_jpeg, frame_id)
            await asyncio.sleep(0.03)
        await _until(lambda: cam.stats.acked == 15, 30, "first frames acked")
        # Frames sent into a stopped gateway are in flight, never acked, when it is killed.
        gateway.process.send_signal(signal.SIGSTOP)
        for frame_id in range(15, 15 + stalled):
            cam.put(dog_jpeg, frame_id)
        await _until(lambda: cam.stats.sent == 15 + stalled, 10, "sent into the stopped gateway")
        gateway.process.send_signal(signal.SIGKILL)
        gateway.process.wait()
        killed_us = time.time_ns() // 1000
        for frame_id in range(15 + stalled, 30):  # while no gateway listens: buffered
            cam.put(dog_jpeg, frame_id)
        await asyncio.to_thread(launch_gateway, stack, True, port)
        for frame_id in range(30, total):
            cam.put(dog_jpeg, frame_id)
            await asyncio.sleep(0.03)
        async with asyncio.timeout(60):
            await cam.drain()
    stats = cam.stats
    assert stats.acked == stats.put == total, stats
    assert stats.dropped_oldest == 0 and not stats.refused, stats
    assert stats.reconnects >= 1 and stats.resent >= stalled, stats

    decode = engine_topics(stack.settings.topics).detections.reader(LocalSchemaIds()).decode

    def every_frame(records: list[Any]) -> bool:
        return {decode(r.value)["frame_id"] for r in records} >= set(range(total))

    records = await asyncio.to_thread(
        read_topic, stack.settings.kafka, stack.settings.topics.detections, every_frame, 120
    )
    detected = [decode(r.value)["frame_id"] for r in records]
    assert set(detected) == set(range(total))
    # A frame repeats only if it was resent (it reached the broker before the kill).
    assert len(detected) - total <= stats.resent
    # Recovery: until the first detection of a frame the kill caught in flight.
    later = [
        d["worker_ts_us"] for d in map(decode, (r.value for r in records)) if d["frame_id"] >= 15
    ]
    fault_table.record(
        FaultRow.tally(
            "gateway SIGKILL + restart (resending client)",
            sent=stats.put,
            acked=stats.acked,
            wanted=range(total),
            came_out=detected,
            recovery_s=(min(later) - killed_us) / 1e6,
        )
    )


async def test_a_full_buffer_drops_the_oldest_and_counts_them(dog_jpeg: bytes) -> None:
    port = free_port()  # nothing listens: every frame waits in the buffer
    async with ResendingClient(f"ws://127.0.0.1:{port}", STREAM, buffer_frames=4) as cam:
        for frame_id in range(10):
            cam.put(dog_jpeg, frame_id)
        assert cam.unacked == 4 and cam.stats.dropped_oldest == 6
        assert list(cam._buffer) == [6, 7, 8, 9]  # the newest kept, in order
