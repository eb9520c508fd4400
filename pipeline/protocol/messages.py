"""JSON text messages the gateway sends on its sockets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class Refused(Exception):
    """Something a client asked for and is told it cannot have: a stable, machine-readable
    ``code`` (what the client's code branches on) and a ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ack(
    frame_id: int, gateway_latency_ms: float, broker_ms: float, partition: int, offset: int
) -> str:
    """Per-frame acknowledgement on an ingest socket opened with ?ack=1.

    gateway_latency_ms runs from receipt to the ack; broker_ms is the part of it between
    handing the frame to the producer and its delivery report (librdkafka's queue, the
    network, the broker, and the wait for the producer's poll thread).
    """
    return (
        f'{{"type":"ack","frame_id":{frame_id},"gateway_latency_ms":{gateway_latency_ms:.3f},'
        f'"broker_ms":{broker_ms:.3f},"partition":{partition},"offset":{offset}}}'
    )


def error(code: str, message: str, frame_id: int | None = None) -> str:
    """A refusal: the connection stays open unless the code says otherwise."""
    return json.dumps({"type": "error", "code": code, "message": message, "frame_id": frame_id})


def hello(kind: str, **fields: Any) -> str:
    """First message on a socket: what it is connected to."""
    return json.dumps({"type": "hello", "endpoint": kind, **fields})


def detections(record: Mapping[str, Any]) -> str:
    """One Detections record (schemas/detections.avsc, as decoded) as the subscribe socket's
    JSON, boxes as [x1, y1, x2, y2]."""
    timings = record["timings"]
    body = {
        "type": "detections",
        "stream_id": record["stream_id"],
        "frame_id": record["frame_id"],
        "capture_ts_us": record["capture_ts_us"],
        "gateway_ts_us": record["gateway_ts_us"],
        "worker_ts_us": record["worker_ts_us"],
        "width": record["width"],
        "height": record["height"],
        "model": record["model"],
        "worker": record["worker"],
        "timings": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in timings.items()},
        "objects": [
            {
                "class_id": o["class_id"],
                "label": o["label"],
                "score": round(o["score"], 4),
                "box": [round(o["x1"], 1), round(o["y1"], 1), round(o["x2"], 1), round(o["y2"], 1)],
            }
            for o in record["objects"]
        ],
        "inferred": record.get("inferred", True),
    }
    return json.dumps(body, separators=(",", ":"))


def analytics_event(record: Mapping[str, Any]) -> str:
    """One vae.events record (schemas/events.avsc) as the events socket's JSON."""
    return json.dumps({"type": "event", **record}, separators=(",", ":"))


def analytics_counts(record: Mapping[str, Any]) -> str:
    """One vae.counts record (schemas/counts.avsc) as the events socket's JSON."""
    return json.dumps({"type": "counts", **record}, separators=(",", ":"))


def tracks(record: Mapping[str, Any]) -> str:
    """One vae.tracks record (schemas/tracks.avsc) as the subscribe socket's JSON: the frame's
    objects with their track ids (-1: not yet confirmed) and the zones their tracks are in."""
    body = {
        "type": "tracks",
        "stream_id": record["stream_id"],
        "frame_id": record["frame_id"],
        "capture_ts_us": record["capture_ts_us"],
        "width": record["width"],
        "height": record["height"],
        "objects": [
            {
                "track_id": o["track_id"],
                "class_id": o["class_id"],
                "label": o["label"],
                "score": round(o["score"], 4),
                "box": [round(o["x1"], 1), round(o["y1"], 1), round(o["x2"], 1), round(o["y2"], 1)],
                "zones": o["zones"],
            }
            for o in record["objects"]
        ],
    }
    return json.dumps(body, separators=(",", ":"))
