"""A worker SIGSTOPped for longer than its session timeout, then resumed.

While it is stopped, the group expels it and its partitions move to the other worker, which
reads them again from their committed positions. On SIGCONT the stopped worker notices the
gap in its polls and fetches nothing more until the group has spoken (`GroupConsumer`: the
lost-assignment callback, `Worker._on_lost`), publishes what its stages still held, and
rejoins. What at-least-once then promises is asserted exactly: every frame is detected, each
stream's first deliveries keep its order, a frame is repeated only if it was in flight at
the stop (received before it, at or above its partition's committed position), and the
group's committed positions end at the end of every partition (the late deliveries and
commits of the stopped worker held nothing back).
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from client import IngestClient
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.conftest import Service, Stack, ws_url
from tests.faults import FaultRow, FaultTable
from tests.kafka_tools import read_topic
from tests.workers import (
    committed_frames,
    detected_by,
    frames_written,
    owned_partitions,
    wait_for_split,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

STREAMS = [f"cam-{i:02d}" for i in range(6)]
FPS = 3.0
PROCESSED = "vae_worker_frames_processed_total"


async def _push(url: str, stream_id: str, jpeg: bytes, done: asyncio.Event) -> int:
    """Frames 0, 1, ... each acked (in the broker) before the next, until ``done``."""
    frame_id = 0
    async with IngestClient(url, stream_id, ack=True) as cam:
        while not done.is_set():
            await cam.send(jpeg, frame_id)
            await cam.receive()
            frame_id += 1
            await asyncio.sleep(1 / FPS)
    return frame_id


async def _until(condition: Any, limit_s: float, what: Any, *logs: Service) -> None:
    """Until ``condition()`` (run on a thread) holds; ``what`` (or ``what()``) says what."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not await asyncio.to_thread(condition):
        if loop.time() > deadline:
            tails = "\n".join(s.log(30) for s in logs)
            said = what() if callable(what) else what
            raise AssertionError(f"{said}: not within {limit_s:.0f} s\n{tails}")
        await asyncio.sleep(0.2)


async def test_worker_sigstopped_past_its_session_timeout_rejoins_without_loss(
    stack: Stack, start_gateway: Any, start_worker: Any, dog_jpeg: bytes, fault_table: FaultTable
) -> None:
    # Every frame through the model (no motion gating), so each is in flight for a while.
    stopped = start_worker("stopped-worker", VAE_WORKER_GATE="false", VAE_WORKER_MAX_BATCH="4")
    other = start_worker("worker", VAE_WORKER_GATE="false", VAE_WORKER_MAX_BATCH="4")
    total_partitions = stack.settings.topics.frames_partitions
    await asyncio.to_thread(wait_for_split, [stopped, other], total_partitions)
    gateway = start_gateway()
    done = asyncio.Event()
    pushers = asyncio.gather(*(_push(ws_url(gateway), s, dog_jpeg, done) for s in STREAMS))
    session_s = stack.settings.worker.session_timeout_ms / 1000
    try:
        await _until(lambda: stopped.metric(PROCESSED) >= 10, 60, "a start", stopped)
        await _until(
            lambda: stopped.metric("vae_worker_inflight_frames") >= 1, 30, "in flight", stopped
        )
        partitions = await asyncio.to_thread(owned_partitions, stopped)
        stopped.process.send_signal(signal.SIGSTOP)
        stopped_us = time.time_ns() // 1000
        # Nothing of the stopped worker moves now: where its group stands is where it stopped.
        positions = await asyncio.to_thread(committed_frames, stack)
        # Its partitions move: the other worker owns them all (after the session timeout).
        await _until(
            lambda: owned_partitions(other) == set(range(total_partitions)),
            90,
            "partitions moved",
            other,
        )
        stopped_s = (time.time_ns() // 1000 - stopped_us) / 1e6
        assert stopped_s > session_s
        stopped.process.send_signal(signal.SIGCONT)
        # It rejoins: the partitions are split again, and it detects frames again.
        await asyncio.to_thread(wait_for_split, [stopped, other], total_partitions, 90)
        rejoined = await asyncio.to_thread(stopped.metric, PROCESSED)
        await _until(
            lambda: stopped.metric(PROCESSED) >= rejoined + 5, 60, "work after rejoining", stopped
        )
    finally:
        done.set()
        sent_per_stream = await pushers

    every = {(s, f) for s, n in zip(STREAMS, sent_per_stream, strict=True) for f in range(n)}
    decode = engine_topics(stack.settings.topics).detections.reader(LocalSchemaIds()).decode

    def complete(records: list[Any]) -> bool:
        found = {(d["stream_id"], d["frame_id"]) for d in (decode(r.value) for r in records)}
        return every <= found

    records = await asyncio.to_thread(
        read_topic, stack.settings.kafka, stack.settings.topics.detections, complete, 120
    )
    written = await asyncio.to_thread(frames_written, stack)
    assert {(f.stream_id, f.frame_id) for f in written} == every
    # In flight at the stop: frames of its partitions at or above their committed positions
    # that the gateway had received before it (later ones it cannot have fetched).
    in_flight = {
        (f.stream_id, f.frame_id)
        for f in written
        if f.partition in partitions
        and f.offset >= max(positions.get(f.partition, -1), 0)
        and f.gateway_ts_us <= stopped_us
    }
    detected = detected_by(stack, records)
    missing = sorted(every - detected.keys())
    duplicated = {f for f, workers in detected.items() if len(workers) > 1}
    repeats = sum(len(w) - 1 for w in detected.values())
    decoded = [decode(r.value) for r in records]
    taken_over = [
        d["worker_ts_us"]
        for d in decoded
        if (d["stream_id"], d["frame_id"]) in in_flight
        and not d["worker"].endswith(f":{stopped.process.pid}")
    ]
    fault_table.record(
        FaultRow(
            f"worker SIGSTOP {stopped_s:.0f} s (session timeout {session_s:.0f} s) + SIGCONT "
            f"({len(in_flight)} frames in flight)",
            sent=len(every),
            acked=len(every),  # each pusher awaited its ack
            detected=len(detected.keys() & every),
            lost=len(missing),
            duplicated=repeats,
            recovery_s=(min(taken_over) - stopped_us) / 1e6 if taken_over else float("nan"),
        )
    )
    assert not missing, f"frames lost: {missing[:20]}\n{other.log()}\n{stopped.log()}"
    # Nothing repeated beyond the frames it had in flight when it stopped.
    assert duplicated <= in_flight, sorted(duplicated - in_flight)
    assert repeats <= len(in_flight), (repeats, len(in_flight))
    # Per-stream order of first deliveries kept.
    firsts: dict[str, list[int]] = {s: [] for s in STREAMS}
    seen: set[tuple[str, int]] = set()
    for d in decoded:
        key = (d["stream_id"], d["frame_id"])
        if key not in seen:
            seen.add(key)
            firsts[d["stream_id"]].append(d["frame_id"])
    assert all(ids == sorted(ids) for ids in firsts.values()), firsts
    # It found out from the group that its partitions had gone, and both workers published.
    assert "lost" in stopped.log(400), stopped.log()
    assert len({w for ws in detected.values() for w in ws}) == 2
    # The group's positions end at the end of every partition: nothing is left to read again.
    wanted = dict.fromkeys(range(stack.settings.topics.frames_partitions), -1001)  # none
    for f in written:
        wanted[f.partition] = max(wanted[f.partition], f.offset + 1)
    last: list[dict[int, int]] = []
    await _until(
        lambda: last.append(committed_frames(stack)) or last[-1] == wanted,
        60,
        lambda: f"positions committed to the end {wanted}: {last[-1:]}",
        stopped,
        other,
    )
