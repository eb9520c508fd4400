"""Records a worker cannot read: a transient cause waits, a permanent one is dead-lettered.

Written straight into the frames topic on one partition (one key), between good frames: the
worker must process the good frames after them, dead-letter each poison record with its
reason (once: no loop), and hold the partition on an unknown schema id instead of skipping.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import schemas
from pipeline.serde import AvroDecoder, AvroEncoder, LocalSchemaIds
from pipeline.serde.registry import local_schema_id
from pipeline.topics import engine_topics
from tests.faults import FaultRow, FaultTable
from tests.kafka_tools import Record, frame, produce, read_topic
from tests.workers import committed_frames

pytestmark = [pytest.mark.integration, pytest.mark.faults]

KEY = "cam-poison"
WAIT_MS = 3000


def _newer_frame_schema() -> dict[str, Any]:
    """The frame schema a newer gateway might write: one field more (with a default)."""
    schema = schemas.load(schemas.FRAME)
    schema["fields"] = [*schema["fields"], {"name": "lens", "type": "string", "default": ""}]
    return schema


def test_poison_records_are_dead_lettered_and_unknown_schemas_wait(
    stack: Any, start_worker: Any, dog_jpeg: bytes, fault_table: FaultTable
) -> None:
    worker = start_worker(VAE_WORKER_UNKNOWN_SCHEMA_WAIT_MS=str(WAIT_MS))
    topics = engine_topics(stack.settings.topics)
    ids = LocalSchemaIds()
    frames = topics.frames.writer(ids)
    newer = _newer_frame_schema()
    newer_writer = AvroEncoder(newer, LocalSchemaIds([newer]), topics.frames.subject)
    assert newer_writer.schema_id == local_schema_id(newer)
    newer_frame = {**frame(KEY, 2, dog_jpeg), "lens": "wide"}
    values = [
        frames.value(frame(KEY, 0, dog_jpeg)),
        b"definitely not avro",
        newer_writer.encode(newer_frame),
        frames.value(frame(KEY, 3, b"not a jpeg at all")),
        frames.value(frame(KEY, 4, dog_jpeg)),
    ]
    started = time.monotonic()
    produce(stack.settings.kafka, topics.frames.name, KEY, values)

    detections = read_topic(
        stack.settings.kafka, topics.detections.name, lambda r: len(r) >= 2, timeout=60
    )
    detected_at = time.monotonic() - started
    decode = topics.detections.reader(ids).decode
    assert [decode(r.value)["frame_id"] for r in detections] == [0, 4], worker.log()
    # Frame 4 sits behind the record of an unknown schema: it waited for the hold to end.
    assert detected_at >= WAIT_MS / 1000

    letters: list[Record] = read_topic(
        stack.settings.kafka, topics.dead_letters.name, lambda r: len(r) >= 3, timeout=30
    )
    read_letter = AvroDecoder(schemas.load(schemas.DEAD_LETTER), ids).decode
    decoded = [read_letter(r.value) for r in letters]
    assert [d["reason"] for d in decoded] == ["bad_record", "unknown_schema", "undecodable"]
    assert decoded[0]["value"] == b"definitely not avro"
    assert decoded[1]["value"] == values[2] and "held" in decoded[1]["detail"]
    assert topics.frames.reader(ids).decode(decoded[2]["value"])["frame_id"] == 3
    assert {d["key"] for d in decoded} == {KEY}
    assert {(d["source_topic"], d["source_offset"]) for d in decoded} == {
        (topics.frames.name, offset) for offset in (1, 2, 3)
    }

    # Counted once each (no loop), and the partition's position moves past all five.
    partition = detections[0].partition
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        positions = committed_frames(stack)
        if positions.get(partition) == 5:
            break
        time.sleep(0.5)
    assert positions.get(partition) == 5, positions
    for reason in ("bad_record", "unknown_schema", "undecodable"):
        assert worker.metric(f'vae_worker_frames_dead_lettered_total{{reason="{reason}"}}') == 1
    assert worker.metric("vae_worker_schema_waits_total") >= 2  # retried before giving up
    assert worker.metric("vae_worker_frames_processed_total") == 2
    assert worker.metric("vae_worker_held_partitions") == 0
    fault_table.record(
        FaultRow(
            "3 poison records among 2 frames (dead-lettered: 3)",
            sent=len(values),
            acked=len(values),  # written straight into the frames topic
            detected=len(detections),
            lost=2 - len(detections),
            duplicated=0,
            recovery_s=detected_at,  # the good frame behind the unknown schema id waited
        )
    )
