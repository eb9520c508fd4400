"""Two workers share the partitions; SIGKILL one with frames known to be uncommitted.

The kill is made to land when the doomed worker has published detections of frames whose
offsets its group has not committed yet (checked on the broker while the worker is
SIGSTOPped, so nothing moves between the check and the kill). At-least-once then implies
exactly what is asserted: every frame is detected, and those frames (and only frames at or
above the committed positions of its partitions) are detected a second time by the survivor.
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
from tests.conftest import Service, ws_url
from tests.faults import FaultRow, FaultTable
from tests.kafka_tools import committed, read_to_end, read_topic
from tests.workers import detected_by, frame_at, owned_partitions, wait_for_split

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

STREAMS = [f"cam-{i:02d}" for i in range(12)]
FRAMES_PER_STREAM = 30
FPS = 4.0


async def _push(url: str, stream_id: str, jpeg: bytes) -> None:
    async with IngestClient(url, stream_id, ack=True) as cam:
        for frame_id in range(FRAMES_PER_STREAM):
            await cam.send(jpeg, frame_id)
            await cam.receive()  # acked: the frame is in Kafka
            await asyncio.sleep(1 / FPS)


async def _kill_with_frames_uncommitted(
    stack: Any, doomed: Service
) -> tuple[set[tuple[str, int]], set[tuple[str, int]], str]:
    """SIGKILL ``doomed`` at a moment it published detections of frames not yet committed.

    Returns the frames at or above the committed positions of its partitions, those of them
    it had already published (the repeats at-least-once implies), and its worker name.
    """
    kafka, topics = stack.settings.kafka, stack.settings.topics
    for _ in range(100):
        partitions = owned_partitions(doomed)
        doomed.process.send_signal(signal.SIGSTOP)
        positions, frames, detections = await asyncio.gather(
            asyncio.to_thread(
                committed,
                kafka,
                stack.settings.worker.group_id,
                topics.frames,
                topics.frames_partitions,
            ),
            asyncio.to_thread(frame_at, stack),
            asyncio.to_thread(read_to_end, kafka, topics.detections),
        )
        by_doomed = {
            frame
            for frame, workers in detected_by(stack, detections).items()
            for w in workers
            if w.endswith(f":{doomed.process.pid}")
        }
        uncommitted = {
            frame
            for (p, offset), frame in frames.items()
            if p in partitions and offset >= max(positions.get(p, -1), 0)
        }
        repeats = uncommitted & by_doomed
        if repeats:
            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait()
            name = next(
                w
                for ws in detected_by(stack, detections).values()
                for w in ws
                if w.endswith(f":{doomed.process.pid}")
            )
            return uncommitted, repeats, name
        doomed.process.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.2)
    raise AssertionError("the doomed worker never had published frames uncommitted")


async def test_sigkill_of_one_worker_loses_no_frame(
    stack: Any, start_gateway: Any, start_worker: Any, dog_jpeg: bytes, fault_table: FaultTable
) -> None:
    # Offsets, not motion: every frame through the model, so each takes a worker its time.
    doomed = start_worker("killed-worker", VAE_WORKER_GATE="false")
    survivor = start_worker("worker", VAE_WORKER_GATE="false")
    wait_for_split([doomed, survivor], stack.settings.topics.frames_partitions)

    gateway = start_gateway()
    url = ws_url(gateway)
    pushers = asyncio.gather(*(_push(url, s, dog_jpeg) for s in STREAMS))
    uncommitted, repeats, doomed_name = await _kill_with_frames_uncommitted(stack, doomed)
    killed_us = time.time_ns() // 1000
    await pushers

    every = {(s, f) for s in STREAMS for f in range(FRAMES_PER_STREAM)}

    def complete(records: list[Any]) -> bool:
        detected = detected_by(stack, records)
        return every <= detected.keys() and all(len(detected[f]) >= 2 for f in repeats)

    records = await asyncio.to_thread(
        read_topic, stack.settings.kafka, stack.settings.topics.detections, complete, 120
    )
    detected = detected_by(stack, records)
    missing = sorted(every - detected.keys())
    assert not missing, f"frames lost: {missing}\n{survivor.log()}"
    # The repeats at-least-once implies: frames the dead worker had published but not
    # committed come again from the survivor; no frame below a committed position repeats.
    for frame in repeats:
        assert detected[frame][0] == doomed_name and len(detected[frame]) >= 2, frame
        assert doomed_name not in detected[frame][1:], frame
    duplicated = {f for f, workers in detected.items() if len(workers) > 1}
    assert repeats <= duplicated <= uncommitted, (repeats, duplicated - uncommitted)
    assert len({w for ws in detected.values() for w in ws}) == 2
    decode = engine_topics(stack.settings.topics).detections.reader(LocalSchemaIds()).decode
    taken_over = [
        d["worker_ts_us"]
        for d in (decode(r.value) for r in records)
        if (d["stream_id"], d["frame_id"]) in uncommitted and d["worker"] != doomed_name
    ]
    fault_table.record(
        FaultRow(
            "worker SIGKILL (published frames uncommitted)",
            sent=len(every),
            acked=len(every),  # each pusher awaited its ack
            detected=len(detected),
            lost=len(missing),
            duplicated=sum(len(w) - 1 for w in detected.values()),
            recovery_s=(min(taken_over) - killed_us) / 1e6,
        )
    )
