"""The durable embedded broker (`vae broker --durable DIR`): Tansu on a local S3.

SIGKILL the broker mid-stream and start it again on the same data: every frame the gateway
acked before the kill is still there and is detected, and the group's committed positions
survive too (the worker resumes, it does not start over).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import ResendingClient
from pipeline.kafka.embedded import EmbeddedBroker
from tests.conftest import Stack, _new_stack, _stop_services, launch_gateway, launch_worker, ws_url
from tests.faults import FaultRow, FaultTable
from tests.workers import detections_until, first_detected

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

STREAMS = ["dur-0", "dur-1"]
FRAMES = 30


@pytest.fixture
def durable_stack(tmp_path: Path) -> Iterator[Stack]:
    broker = EmbeddedBroker(log_file=tmp_path / "broker.log", data_dir=tmp_path / "data")
    with broker:
        running = _new_stack(broker.bootstrap, tmp_path)
        running.own_broker = broker
        try:
            yield running
        finally:
            _stop_services(running)


async def _wait_acked(cams: list[ResendingClient], at_least: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        if all(c.stats.acked >= at_least for c in cams):
            return
        assert loop.time() < deadline, [c.stats for c in cams]
        await asyncio.sleep(0.05)


@pytest.mark.xfail(
    strict=False,
    reason="Tansu 0.6.0's object-store engine writes an idempotent produce's sequence, "
    "watermark and batch separately, so a SIGKILL between them can ack a record it lost "
    "(scripts/durable_ack_loss.py; docs/reliability.md): every row is still recorded",
)
async def test_broker_sigkill_and_restart_keeps_every_acked_frame(
    durable_stack: Stack, dog_jpeg: bytes, fault_table: FaultTable
) -> None:
    stack = durable_stack
    broker = stack.own_broker
    assert broker is not None
    launch_worker(stack)
    gateway = launch_gateway(stack)
    cams = [ResendingClient(ws_url(gateway), s, backoff_s=0.1, max_backoff_s=1.0) for s in STREAMS]
    for cam in cams:
        await cam.__aenter__()
    try:
        for frame_id in range(FRAMES // 2):
            for cam in cams:
                cam.put(dog_jpeg, frame_id)
            await asyncio.sleep(0.05)
        await _wait_acked(cams, FRAMES // 2)
        acked_before = sum(c.stats.acked for c in cams)
        broker.kill()
        killed_us = time.time_ns() // 1000
        for frame_id in range(FRAMES // 2, FRAMES):  # handed over while the broker is down
            for cam in cams:
                cam.put(dog_jpeg, frame_id)
        await asyncio.to_thread(broker.start)
        async with asyncio.timeout(120):
            for cam in cams:
                await cam.drain()
    finally:
        for cam in cams:
            await cam.close()
    assert acked_before == len(STREAMS) * FRAMES // 2
    assert all(c.stats.acked == FRAMES and c.stats.dropped_oldest == 0 for c in cams)

    wanted = {(s, f) for s in STREAMS for f in range(FRAMES)}
    # Read after the restart from offset 0: what was written before the kill is still there.
    decoded = await asyncio.to_thread(detections_until, stack, wanted, 60)
    firsts = first_detected(decoded, STREAMS)
    # Recovery: until the first detection of a frame handed over while the broker was down.
    after = [d["worker_ts_us"] for d in decoded if d["frame_id"] >= FRAMES // 2]
    fault_table.record(
        FaultRow.tally(
            "broker SIGKILL + restart (durable)",
            sent=sum(c.stats.put for c in cams),
            acked=sum(c.stats.acked for c in cams),
            wanted=wanted,
            came_out=[(d["stream_id"], d["frame_id"]) for d in decoded],
            recovery_s=(min(after) - killed_us) / 1e6,
        )
    )  # recorded first: a row showing what was lost is the point of the table
    assert wanted <= {(d["stream_id"], d["frame_id"]) for d in decoded}
    # Per-stream order of first deliveries is kept across the restart.
    assert all(ids == sorted(ids) for ids in firsts.values()), firsts
