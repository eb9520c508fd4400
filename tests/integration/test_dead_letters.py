"""Records a worker cannot read: a transient cause waits, a permanent one is dead-lettered.

Written straight into the frames topic on one partition (one key), between good frames: the
worker must process the good frames after them, dead-letter each poison record with its
reason (once: no loop), and hold the partition on an unknown schema id instead of skipping.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest

import schemas
from pipeline.kafka.clients import producer_config
from pipeline.kafka.producer import CallbackProducer
from pipeline.serde import AvroDecoder, AvroEncoder, LocalSchemaIds, frame_record
from pipeline.serde.registry import local_schema_id
from pipeline.topics import engine_topics
from tests.kafka_tools import Record, committed, read_topic

pytestmark = pytest.mark.integration

KEY = "cam-poison"
WAIT_MS = 3000


def _newer_frame_schema() -> dict[str, Any]:
    """The frame schema a newer gateway might write: one field more (with a default)."""
    schema = schemas.load(schemas.FRAME)
    schema["fields"] = [*schema["fields"], {"name": "lens", "type": "string", "default": ""}]
    return schema


def _frame(frame_id: int, image: bytes) -> dict[str, Any]:
    now = time.time_ns() // 1000
    return dict(
        frame_record(
            stream_id=KEY,
            frame_id=frame_id,
            capture_ts_us=now,
            gateway_ts_us=now,
            width=768,
            height=576,
            image=image,
        )
    )


def _metric(http: str, sample: str) -> float:
    with urllib.request.urlopen(http + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
    return 0.0


def _produce(settings: Any, values: list[bytes]) -> None:
    producer = CallbackProducer(
        producer_config(settings.kafka, "test", linger_ms=0, max_message_bytes=4_194_304)
    )
    errors: list[str] = []
    for value in values:
        producer.produce(
            settings.topics.frames, KEY.encode(), value, lambda e: errors.append(e) if e else None
        )
    assert producer.close(10) == 0 and not errors


def test_poison_records_are_dead_lettered_and_unknown_schemas_wait(
    stack: Any, start_worker: Any, dog_jpeg: bytes
) -> None:
    worker = start_worker(VAE_WORKER_UNKNOWN_SCHEMA_WAIT_MS=str(WAIT_MS))
    topics = engine_topics(stack.settings.topics)
    ids = LocalSchemaIds()
    frames = topics.frames.writer(ids)
    newer = _newer_frame_schema()
    newer_writer = AvroEncoder(newer, LocalSchemaIds([newer]), topics.frames.subject)
    assert newer_writer.schema_id == local_schema_id(newer)
    newer_frame = {**_frame(2, dog_jpeg), "lens": "wide"}
    values = [
        frames.value(_frame(0, dog_jpeg)),  # type: ignore[arg-type]
        b"definitely not avro",
        newer_writer.encode(newer_frame),
        frames.value(_frame(3, b"not a jpeg at all")),  # type: ignore[arg-type]
        frames.value(_frame(4, dog_jpeg)),  # type: ignore[arg-type]
    ]
    started = time.monotonic()
    _produce(stack.settings, values)

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
        positions = committed(
            stack.settings.kafka,
            stack.settings.worker.group_id,
            topics.frames.name,
            topics.frames.partitions,
        )
        if positions.get(partition) == 5:
            break
        time.sleep(0.5)
    assert positions.get(partition) == 5, positions
    http = worker.http
    for reason in ("bad_record", "unknown_schema", "undecodable"):
        sample = f'vae_worker_frames_dead_lettered_total{{reason="{reason}"}}'
        assert _metric(http, sample) == 1
    assert _metric(http, "vae_worker_schema_waits_total") >= 2  # retried before giving up
    assert _metric(http, "vae_worker_frames_processed_total") == 2
    assert _metric(http, "vae_worker_held_partitions") == 0
