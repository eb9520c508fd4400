"""The broker SIGSTOPped for 20 s under a steady load, then resumed.

Cameras (`ResendingClient`s) keep handing frames over at a steady rate through a real
gateway to a worker. While the broker is stopped, the gateway's producer queue fills, it
refuses a frame with `overloaded` after its backpressure wait, and its memory stays bounded
by that queue; on the clients' ordered sockets it then reads nothing more until the frames
before the refused one are acked, so the clients keep their frames (and the refused one)
and send them again in order. Once the broker runs again everything recovers by itself (the
gateway's queued frames are acked, the worker's group re-forms), every frame the clients
were handed is detected, and each stream's first deliveries are in order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from client import ResendingClient
from tests.conftest import Service, Stack, launch_gateway, launch_worker, ws_url
from tests.faults import FaultRow, FaultTable
from tests.workers import detections_until, first_detected

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

STREAMS = [f"stall-{i}" for i in range(6)]
FPS = 4.0
STALL_S = 20.0
QUEUE_KBYTES = 4096  # the gateway's producer queue: full about a second into the stall
BACKPRESSURE_MS = 500


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class Cameras:
    """The streams' clients, fed one frame per stream every 1/FPS s until stopped."""

    def __init__(self, url: str, jpeg: bytes) -> None:
        self.jpeg = jpeg
        self.clients = [
            ResendingClient(url, s, buffer_frames=1024, backoff_s=0.1, max_backoff_s=1.0)
            for s in STREAMS
        ]
        self.next_id = 0
        self.put_at: list[float] = []  # wall time each frame id was handed over
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for client in self.clients:
            await client.__aenter__()
        self._task = asyncio.create_task(self._feed())

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            self.put_at.append(time.time())
            for client in self.clients:
                client.put(self.jpeg, self.next_id)
            self.next_id += 1
            await asyncio.sleep(max(0.0, started + self.next_id / FPS - loop.time()))

    async def stop_feeding(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        await self.stop_feeding()
        for client in self.clients:
            await client.close()

    def total(self, field: str) -> int:
        return sum(getattr(c.stats, field) for c in self.clients)

    def retried(self, code: str) -> int:
        return sum(c.stats.retried.get(code, 0) for c in self.clients)


async def _until(condition: Any, limit_s: float, what: str, *logs: Service) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        if loop.time() > deadline:
            tails = "\n".join(s.log(30) for s in logs)
            raise AssertionError(f"{what}: not within {limit_s:.0f} s\n{tails}")
        await asyncio.sleep(0.05)


async def test_broker_sigstopped_20_s_under_load_recovers_by_itself(
    own_stack: Stack, dog_jpeg: bytes, fault_table: FaultTable
) -> None:
    stack = own_stack
    broker = stack.own_broker
    assert broker is not None and broker.pid is not None
    worker = launch_worker(stack)
    gateway = launch_gateway(
        stack,
        VAE_GATEWAY_PRODUCER_QUEUE_KBYTES=str(QUEUE_KBYTES),
        VAE_GATEWAY_BACKPRESSURE_TIMEOUT_MS=str(BACKPRESSURE_MS),
    )
    cams = Cameras(ws_url(gateway), dog_jpeg)
    await cams.start()
    try:
        # Steady state first: frames acked and detected.
        await _until(lambda: cams.total("acked") >= len(STREAMS) * 8, 60, "acks", gateway)
        await _until(
            lambda: worker.metric("vae_worker_frames_processed_total") >= len(STREAMS) * 4,
            60,
            "detections",
            worker,
        )
        rss_before = _rss_bytes(gateway.process.pid)
        os.kill(broker.pid, signal.SIGSTOP)
        stopped_at = time.time()
        first_stalled_id = cams.next_id
        rss_peak, first_refusal_s = rss_before, None
        try:
            while time.time() - stopped_at < STALL_S:
                rss_peak = max(rss_peak, _rss_bytes(gateway.process.pid))
                if first_refusal_s is None and cams.retried("overloaded"):
                    first_refusal_s = time.time() - stopped_at
                await asyncio.sleep(0.1)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        resumed_at = time.time()
        last_stalled_id = cams.next_id - 1
        refused_in_stall = cams.retried("overloaded")
        # Recovers by itself: frames handed over after the stall are acked and detected.
        await asyncio.sleep(5.0)
    finally:
        await cams.stop_feeding()
    try:
        async with asyncio.timeout(120):
            for client in cams.clients:
                await client.drain()
    finally:
        await cams.close()

    total = cams.next_id
    stats = [c.stats for c in cams.clients]
    assert all(s.acked == s.put == total for s in stats), stats
    assert all(s.dropped_oldest == 0 and not s.refused for s in stats), stats
    wanted = {(s, f) for s in STREAMS for f in range(total)}
    decoded = await asyncio.to_thread(detections_until, stack, wanted, 120)
    stalled = [
        d["worker_ts_us"] / 1e6
        for d in decoded
        if first_stalled_id <= d["frame_id"] <= last_stalled_id
    ]
    # A refused frame is sent again before any later frame of its stream (ordered sockets).
    firsts = first_detected(decoded, STREAMS)
    late = 0  # frames first detected after a later frame of their stream
    for ids in firsts.values():
        highest = -1
        for frame_id in ids:
            late += frame_id < highest
            highest = max(highest, frame_id)
    fault_table.record(
        FaultRow.tally(
            f"broker SIGSTOP {STALL_S:.0f} s under load, resending clients ({refused_in_stall} "
            "refused `overloaded`, sent again; recovery from SIGCONT)",
            sent=sum(s.put for s in stats),
            acked=sum(s.acked for s in stats),
            wanted=wanted,
            came_out=[(d["stream_id"], d["frame_id"]) for d in decoded],
            recovery_s=min(stalled) - resumed_at,
        )
    )
    seen = {(d["stream_id"], d["frame_id"]) for d in decoded}
    assert wanted <= seen, sorted(wanted - seen)[:20]
    assert late == 0, firsts  # per-stream order of first deliveries kept
    assert refused_in_stall >= 1, refused_in_stall
    # The gateway refused within its bound: its queue fills at the cameras' rate, then a
    # frame waits BACKPRESSURE_MS for room before it is refused (5 s for a loaded machine).
    fill_s = QUEUE_KBYTES * 1024 / (len(STREAMS) * FPS * len(dog_jpeg))
    bound_s = fill_s + BACKPRESSURE_MS / 1000 + 5.0
    assert first_refusal_s is not None and first_refusal_s < bound_s, (first_refusal_s, bound_s)
    # Its memory stayed bounded by the producer queue (plus what Python and librdkafka add).
    grown = rss_peak - rss_before
    assert grown < QUEUE_KBYTES * 1024 * 2 + 32 * 2**20, grown
    print(
        f"gateway RSS {rss_before / 2**20:.0f} MiB, +{grown / 2**20:.1f} MiB in the stall; "
        f"first `overloaded` {first_refusal_s:.1f} s into it"
    )
