"""Avro in the Confluent wire format: round trips, ids, schema evolution, bad bytes."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

import schemas
from pipeline.serde import AvroDecoder, AvroEncoder, LocalSchemaIds, SerdeError, wire
from pipeline.serde.registry import local_schema_id
from pipeline.serde.wire import HEADER_SIZE, schema_id_of


def frame_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "stream_id": "cam-1",
        "frame_id": 42,
        "capture_ts_us": 1_700_000_000_000_000,
        "gateway_ts_us": 1_700_000_000_000_500,
        "width": 768,
        "height": 576,
        "encoding": "JPEG",
        "image": b"\xff\xd8\xff\xd9",
    }
    record.update(overrides)
    return record


def detections_record() -> dict[str, Any]:
    return {
        "stream_id": "cam-1",
        "frame_id": 42,
        "capture_ts_us": 1,
        "gateway_ts_us": 2,
        "worker_ts_us": 3,
        "width": 768,
        "height": 576,
        "model": "yolox_nano/onnxruntime-cpu/fp32",
        "worker": "host:1",
        "timings": {
            "queue_ms": 1.5,
            "decode_ms": 2.5,
            "preprocess_ms": 1.0,
            "inference_ms": 20.0,
            "postprocess_ms": 0.5,
            "batch_size": 4,
        },
        "objects": [
            {
                "class_id": 16,
                "label": "dog",
                "score": 0.5,
                "x1": 1.0,
                "y1": 2.0,
                "x2": 3.0,
                "y2": 4.0,
            }
        ],
        "inferred": True,
        "frame_partition": 3,
        "frame_offset": 1234,
    }


def earlier_detections(version: int) -> dict[str, Any]:
    """schemas/earlier/detections-<version>.avsc."""
    found = [s for s in schemas.earlier() if s["name"] == "Detections"]
    return found[version - 1]


@pytest.mark.parametrize(
    ("name", "record"), [("frame", frame_record()), ("detections", detections_record())]
)
def test_round_trip(name: str, record: dict[str, Any]) -> None:
    ids = LocalSchemaIds()
    schema = schemas.load(name)
    data = AvroEncoder(schema, ids, f"{name}-value").encode(record)
    assert data[0] == 0
    assert schema_id_of(data) == local_schema_id(schema)
    assert AvroDecoder(schema, ids).decode(data) == record


def _whole_record(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """The record as fastavro writes it in one go (what the encoder must equal)."""
    buf = io.BytesIO()
    buf.write(wire.header(local_schema_id(schema)))
    schemaless_writer(buf, parse_schema(schema), record)
    return buf.getvalue()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 127, 128, 8191, 8192, 19_000, 2_000_000])
@pytest.mark.parametrize(
    ("stream_id", "frame_id", "ts_us"),
    [("c", 0, 0), ("cam-1", 42, 1_700_000_000_000_000), ("é" * 128, 2**63 - 1, -(2**63))],
)
def test_a_frame_is_written_as_fastavro_writes_it_with_its_image_appended_once(
    size: int, stream_id: str, frame_id: int, ts_us: int
) -> None:
    """The frame's JPEG (its last field, ``bytes``) is appended after the fields fastavro
    wrote: the result must be the very bytes of the whole record, for any image length
    (its varint grows at 64, 8192, ...) and the extreme values of every field."""
    schema = schemas.load("frame")
    image = bytes(range(256)) * (size // 256) + bytes(size % 256)
    record = frame_record(
        stream_id=stream_id,
        frame_id=frame_id,
        capture_ts_us=ts_us,
        gateway_ts_us=-ts_us // 3,
        width=2**31 - 1,
        height=-(2**31),
        image=image,
    )
    data = AvroEncoder(schema, LocalSchemaIds(), "frames-value").encode(record)
    assert data == _whole_record(schema, record)
    assert AvroDecoder(schema, LocalSchemaIds()).decode(data) == record
    view = AvroEncoder(schema, LocalSchemaIds(), "frames-value").encode(
        {**record, "image": memoryview(b"xx" + image)[2:]}
    )
    assert view == data


def test_a_dead_letter_is_written_as_fastavro_writes_it() -> None:
    schema = schemas.load("dead_letter")
    record = {
        "source_topic": "vae.frames",
        "source_partition": 3,
        "source_offset": 12345,
        "key": None,
        "reason": "bad_record",
        "detail": "x",
        "worker": "host:1",
        "dead_ts_us": 1,
        "value": b"\x00" * 300,
    }
    data = AvroEncoder(schema, LocalSchemaIds(), "dl-value").encode(record)
    assert data == _whole_record(schema, record)


def test_an_image_that_is_not_bytes_is_a_clear_error() -> None:
    encoder = AvroEncoder(schemas.load("frame"), LocalSchemaIds(), "x")
    with pytest.raises(SerdeError, match="image must be bytes"):
        encoder.encode(frame_record(image="not bytes"))


def test_local_ids_are_stable_and_distinct() -> None:
    frame, detections = schemas.load("frame"), schemas.load("detections")
    assert local_schema_id(frame) == local_schema_id(copy.deepcopy(frame))
    assert local_schema_id(frame) != local_schema_id(detections)
    assert 0 < local_schema_id(frame) < 2**31


def test_reader_with_a_new_optional_field_reads_old_records() -> None:
    old = schemas.load("frame")
    new = copy.deepcopy(old)
    new["fields"].append(
        {"name": "camera_model", "type": ["null", "string"], "default": None, "doc": "added in v2"}
    )
    writer_ids = LocalSchemaIds()
    data = AvroEncoder(old, writer_ids, "frames-value").encode(frame_record())
    reader_ids = LocalSchemaIds(extra=[new])  # knows the old schema too, as every reader does
    decoded = AvroDecoder(new, reader_ids).decode(data)
    assert decoded["camera_model"] is None
    assert decoded["frame_id"] == 42


def test_old_reader_skips_a_field_new_writers_add() -> None:
    old = schemas.load("frame")
    new = copy.deepcopy(old)
    new["fields"].append({"name": "camera_model", "type": ["null", "string"], "default": None})
    ids = LocalSchemaIds(extra=[new])
    data = AvroEncoder(new, ids, "frames-value").encode(frame_record(camera_model="X100"))
    decoded = AvroDecoder(old, ids).decode(data)
    assert "camera_model" not in decoded
    assert decoded["stream_id"] == "cam-1"


def test_unknown_schema_id_is_a_clear_error() -> None:
    data = AvroEncoder(schemas.load("frame"), LocalSchemaIds(), "x").encode(frame_record())
    tampered = data[:1] + (12345).to_bytes(4, "big") + data[HEADER_SIZE:]
    with pytest.raises(SerdeError, match="schema id 12345"):
        AvroDecoder(schemas.load("frame"), LocalSchemaIds()).decode(tampered)


@pytest.mark.parametrize("data", [b"", b"\x00\x00", b"\x01\x00\x00\x00\x01rest"])
def test_bad_framing_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(SerdeError):
        AvroDecoder(schemas.load("frame"), LocalSchemaIds()).decode(data)


def test_truncated_body_is_a_clear_error() -> None:
    data = AvroEncoder(schemas.load("frame"), LocalSchemaIds(), "x").encode(frame_record())
    with pytest.raises(SerdeError):
        AvroDecoder(schemas.load("frame"), LocalSchemaIds()).decode(data[:12])


def test_encoding_a_wrong_record_is_a_clear_error() -> None:
    with pytest.raises(SerdeError):
        AvroEncoder(schemas.load("frame"), LocalSchemaIds(), "x").encode(frame_record(width="wide"))


def test_detections_of_earlier_writers_still_decode_without_a_registry() -> None:
    """Workers from before motion gating write Detections without ``inferred``: a reader of
    today's schema (the local ids know the earlier version) reads them as inferred."""
    earlier = earlier_detections(1)
    ids = LocalSchemaIds()
    old = detections_record()
    del old["inferred"], old["frame_partition"], old["frame_offset"]
    data = AvroEncoder(earlier, ids, "detections-value").encode(old)
    assert local_schema_id(earlier) != local_schema_id(schemas.load("detections"))
    assert AvroDecoder(schemas.load("detections"), LocalSchemaIds()).decode(data) == {
        **old,
        "inferred": True,
        "frame_partition": -1,
        "frame_offset": -1,
    }


def test_detections_of_workers_before_frame_positions_say_unknown() -> None:
    """Workers from before detections said where their frame sits write no frame_partition
    or frame_offset: today's readers read -1 (the analytics then names no position)."""
    earlier = earlier_detections(2)
    old = detections_record()
    del old["frame_partition"], old["frame_offset"]
    data = AvroEncoder(earlier, LocalSchemaIds(), "detections-value").encode(old)
    assert local_schema_id(earlier) != local_schema_id(schemas.load("detections"))
    decoded = AvroDecoder(schemas.load("detections"), LocalSchemaIds()).decode(data)
    assert decoded == {**old, "frame_partition": -1, "frame_offset": -1}
    record = detections_record()
    data = AvroEncoder(schemas.load("detections"), LocalSchemaIds(), "x").encode(record)
    assert AvroDecoder(earlier, LocalSchemaIds()).decode(data) == old


def test_earlier_readers_skip_the_gating_flag() -> None:
    earlier = earlier_detections(1)
    ids = LocalSchemaIds()
    record = {**detections_record(), "inferred": False}
    data = AvroEncoder(schemas.load("detections"), ids, "detections-value").encode(record)
    decoded = AvroDecoder(earlier, ids).decode(data)
    assert "inferred" not in decoded
    assert decoded["objects"] == record["objects"]
