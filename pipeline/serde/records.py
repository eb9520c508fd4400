"""The shapes of the topics' records, as fastavro reads and writes them (plain dicts), and
the builders that assemble them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypedDict

import numpy as np
import numpy.typing as npt


class FrameRecord(TypedDict):
    """schemas/frame.avsc."""

    stream_id: str
    frame_id: int
    capture_ts_us: int
    gateway_ts_us: int
    width: int
    height: int
    encoding: str
    image: bytes


class StageTimings(TypedDict):
    """Per-stage milliseconds inside Detections."""

    queue_ms: float
    decode_ms: float
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    batch_size: int


class DetectedObjectRecord(TypedDict):
    """One box of schemas/detections.avsc."""

    class_id: int
    label: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


class DetectionsRecord(TypedDict):
    """schemas/detections.avsc."""

    stream_id: str
    frame_id: int
    capture_ts_us: int
    gateway_ts_us: int
    worker_ts_us: int
    width: int
    height: int
    model: str
    worker: str
    timings: StageTimings
    objects: list[DetectedObjectRecord]
    inferred: bool  # False: gated, the objects are the stream's last inferred frame's
    frame_partition: int  # where the frame sits in the frames topic; -1 unknown
    frame_offset: int


# --- builders: the one place each record is assembled --------------------------------


class Boxes(Protocol):
    """What detected_objects reads: the engine's Detections container has this shape."""

    @property
    def xyxy(self) -> npt.NDArray[np.float32]: ...
    @property
    def confidence(self) -> npt.NDArray[np.float32]: ...
    @property
    def class_id(self) -> npt.NDArray[np.int32]: ...


def stage_timings(
    *,
    queue_ms: float = 0.0,
    decode_ms: float = 0.0,
    preprocess_ms: float = 0.0,
    inference_ms: float = 0.0,
    postprocess_ms: float = 0.0,
    batch_size: int = 0,
) -> StageTimings:
    """A frame's stage timings; a stage it did not go through took 0 ms."""
    return {
        "queue_ms": queue_ms,
        "decode_ms": decode_ms,
        "preprocess_ms": preprocess_ms,
        "inference_ms": inference_ms,
        "postprocess_ms": postprocess_ms,
        "batch_size": batch_size,
    }


def frame_record(
    *,
    stream_id: str,
    frame_id: int,
    capture_ts_us: int,
    gateway_ts_us: int,
    width: int,
    height: int,
    image: bytes,
) -> FrameRecord:
    """A frame as the gateway publishes it (JPEG inline)."""
    return {
        "stream_id": stream_id,
        "frame_id": frame_id,
        "capture_ts_us": capture_ts_us,
        "gateway_ts_us": gateway_ts_us,
        "width": width,
        "height": height,
        "encoding": "JPEG",
        "image": image,
    }


class DeadLetterRecord(TypedDict):
    """schemas/dead_letter.avsc."""

    source_topic: str
    source_partition: int
    source_offset: int
    key: str | None
    reason: str
    detail: str
    worker: str
    dead_ts_us: int
    value: bytes


def dead_letter_record(
    *,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    key: bytes | None,
    reason: str,
    detail: str,
    worker: str,
    dead_ts_us: int,
    value: bytes,
) -> DeadLetterRecord:
    """A record given up on, with where it was and why (its bytes unchanged)."""
    return {
        "source_topic": source_topic,
        "source_partition": source_partition,
        "source_offset": source_offset,
        "key": None if key is None else key.decode("utf-8", "replace"),
        "reason": reason,
        "detail": detail,
        "worker": worker,
        "dead_ts_us": dead_ts_us,
        "value": value,
    }


def detected_objects(boxes: Boxes, labels: Sequence[str]) -> list[DetectedObjectRecord]:
    """The Avro shape of one image's boxes (labels looked up by class id)."""
    return [
        {
            "class_id": int(c),
            "label": labels[c] if 0 <= c < len(labels) else f"class{c}",
            "score": float(s),
            "x1": b[0],
            "y1": b[1],
            "x2": b[2],
            "y2": b[3],
        }
        for b, s, c in zip(
            boxes.xyxy.tolist(), boxes.confidence.tolist(), boxes.class_id.tolist(), strict=True
        )
    ]


def detections_record(
    frame: FrameRecord,
    objects: list[DetectedObjectRecord],
    *,
    worker_ts_us: int,
    model: str,
    worker: str,
    timings: StageTimings,
    inferred: bool = True,
    frame_partition: int = -1,
    frame_offset: int = -1,
) -> DetectionsRecord:
    """The detections of one frame, carrying the frame's identity and times and where it
    sits in the frames topic; ``inferred`` False when motion gating carried ``objects``
    over from an earlier frame."""
    return {
        "stream_id": frame["stream_id"],
        "frame_id": frame["frame_id"],
        "capture_ts_us": frame["capture_ts_us"],
        "gateway_ts_us": frame["gateway_ts_us"],
        "worker_ts_us": worker_ts_us,
        "width": frame["width"],
        "height": frame["height"],
        "model": model,
        "worker": worker,
        "timings": timings,
        "objects": objects,
        "inferred": inferred,
        "frame_partition": frame_partition,
        "frame_offset": frame_offset,
    }


class TrackedObjectRecord(DetectedObjectRecord):
    """One object of schemas/tracks.avsc: a detected box with its track and the zones it is in."""

    track_id: int
    zones: list[str]


class TracksRecord(TypedDict):
    """schemas/tracks.avsc: one frame's objects with their track ids."""

    stream_id: str
    frame_id: int
    capture_ts_us: int
    width: int
    height: int
    objects: list[TrackedObjectRecord]


class EventRecord(TypedDict):
    """schemas/events.avsc: a line or zone event."""

    event_id: str
    stream_id: str
    rule: str
    kind: str
    phase: str
    label: str
    class_id: int
    track_id: int
    direction: str
    start_ts_us: int
    end_ts_us: int
    frame_id: int
    score: float
    x1: float
    y1: float
    x2: float
    y2: float
    frame_partition: int
    frame_offset: int
    trigger_frame_id: int


class CountsRecord(TypedDict):
    """schemas/counts.avsc: one window's counts for one stream, rule and class."""

    stream_id: str
    rule: str
    kind: str
    label: str
    window_start_us: int
    window_end_us: int
    crossed_in: int
    crossed_out: int
    entries: int
    peak_occupancy: int
    revision: int


class RulesRecord(TypedDict):
    """schemas/rules.avsc: the analytics rules document as saved through the gateway."""

    yaml: str
    saved_ts_us: int
