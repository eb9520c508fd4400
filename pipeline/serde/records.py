"""The shapes of the two topics' records, as fastavro reads and writes them (plain dicts)."""

from __future__ import annotations

from typing import TypedDict


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
