"""What fault tests ask of a worker group: who owns which partition, which frame sits at which
offset, and who published each frame's detections."""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pipeline.serde import DetectionsRecord, LocalSchemaIds
from pipeline.topics import engine_topics
from tests.conftest import Service
from tests.kafka_tools import Record, committed, read_to_end, read_topic


def owned_partitions(worker: Service) -> set[int]:
    """The partitions a worker says (in /readyz) it owns."""
    with urllib.request.urlopen(worker.http + "/readyz", timeout=2) as response:
        text = response.read().decode()
    # "in group, partitions [0, 3, 5]"
    inside = text.split("[", 1)[1].split("]", 1)[0]
    return {int(p) for p in inside.split(",") if p.strip()}


def wait_for_split(workers: list[Service], total: int, timeout: float = 60) -> None:
    """Until every worker owns partitions, none twice, ``total`` in all."""
    deadline = time.monotonic() + timeout
    owned: list[set[int]] = []
    while time.monotonic() < deadline:
        owned = [owned_partitions(w) for w in workers]
        if all(owned) and sum(len(o) for o in owned) == total and not set.intersection(*owned):
            return
        time.sleep(0.5)
    raise AssertionError(f"partitions never split between the workers: {owned}")


def frame_at(stack: Any) -> dict[tuple[int, int], tuple[str, int]]:
    """(partition, offset) of the frames topic, up to its end now -> (stream_id, frame_id)."""
    decode = engine_topics(stack.settings.topics).frames.reader(LocalSchemaIds()).decode
    out = {}
    for r in read_to_end(stack.settings.kafka, stack.settings.topics.frames):
        frame = decode(r.value)
        out[(r.partition, r.offset)] = (frame["stream_id"], frame["frame_id"])
    return out


@dataclass(frozen=True)
class WrittenFrame:
    partition: int
    offset: int
    stream_id: str
    frame_id: int
    gateway_ts_us: int  # when the gateway received it


def frames_written(stack: Any) -> list[WrittenFrame]:
    """Every frame record of the frames topic up to its end now, where it is and when the
    gateway received it."""
    decode = engine_topics(stack.settings.topics).frames.reader(LocalSchemaIds()).decode
    out = []
    for r in read_to_end(stack.settings.kafka, stack.settings.topics.frames):
        frame = decode(r.value)
        out.append(
            WrittenFrame(
                r.partition, r.offset, frame["stream_id"], frame["frame_id"], frame["gateway_ts_us"]
            )
        )
    return out


def detected_by(stack: Any, records: list[Record]) -> dict[tuple[str, int], list[str]]:
    """(stream_id, frame_id) -> the workers that published its detections, in order."""
    decode = engine_topics(stack.settings.topics).detections.reader(LocalSchemaIds()).decode
    out: dict[tuple[str, int], list[str]] = defaultdict(list)
    for r in records:
        d = decode(r.value)
        out[(d["stream_id"], d["frame_id"])].append(d["worker"])
    return out


def committed_frames(stack: Any) -> dict[int, int]:
    """The workers' group's committed position of each frames partition (negative: none)."""
    topics = stack.settings.topics
    return committed(
        stack.settings.kafka,
        stack.settings.worker.group_id,
        topics.frames,
        topics.frames_partitions,
    )


def detections_until(
    stack: Any, wanted: set[tuple[str, int]], timeout: float
) -> list[DetectionsRecord]:
    """The detections topic from its start, decoded, read until it holds every
    (stream_id, frame_id) of ``wanted`` (or the timeout)."""
    decode = engine_topics(stack.settings.topics).detections.reader(LocalSchemaIds()).decode

    def every_frame(records: list[Record]) -> bool:
        return wanted <= {
            (d["stream_id"], d["frame_id"]) for d in map(decode, (r.value for r in records))
        }

    topic = stack.settings.topics.detections
    return [decode(r.value) for r in read_topic(stack.settings.kafka, topic, every_frame, timeout)]


def first_detected(decoded: list[DetectionsRecord], streams: Any) -> dict[str, list[int]]:
    """Each stream's frame ids in the order their first detections came (repeats left out)."""
    firsts: dict[str, list[int]] = {s: [] for s in streams}
    seen: set[tuple[str, int]] = set()
    for d in decoded:
        if (d["stream_id"], d["frame_id"]) not in seen:
            seen.add((d["stream_id"], d["frame_id"]))
            firsts[d["stream_id"]].append(d["frame_id"])
    return firsts
