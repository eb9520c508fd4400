"""What a sink holds between reading and committing: items, batches, and their keys and JSON.

Every destination writes by a key, so a record written twice (a sink killed after its write
and before its commit reads the batch again) is stored once:

- an event by its ``event_id`` (deterministic: the analytics give a replayed event the same);
- a window's counts by ``(stream_id, rule, kind, label, window_start)``, keeping the highest
  ``revision`` (a window is emitted again when late data within the grace period changes it);
- a frame's detections by ``(stream_id, frame_id)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

Kind = Literal["event", "counts", "detections"]
EVENT: Final = "event"
COUNTS: Final = "counts"
DETECTIONS: Final = "detections"
WindowKey = tuple[str, str, str, str, int]  # stream_id, rule, kind, label, window_start_us


def iso(us: int) -> str:
    """UNIX epoch microseconds as ISO 8601 UTC (what people and JSON consumers read)."""
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def timestamp(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)


@dataclass(slots=True)
class SinkItem:
    """One record read from a topic, until its batch is committed."""

    kind: Kind
    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    value: dict[str, Any] | None = None  # the decoded Avro record (decoded when flushed)
    done: bool = False  # written, or dead-lettered: not to be written again on a retry
    dead: bool = False  # dead-lettered
    revoked: bool = False  # its partition went to another member: not written, not committed

    def ident(self) -> str:
        """The record's idempotency key (Idempotency-Key of a webhook, dedup key of MQTT)."""
        v = self.value
        assert v is not None, "decoded first"
        if self.kind == EVENT:
            return str(v["event_id"])
        if self.kind == COUNTS:
            stream, rule, kind, label, start = window_key(v)
            return f"counts/{stream}/{rule}/{kind}/{label}/{start}/{v['revision']}"
        return f"detections/{v['stream_id']}/{v['frame_id']}"


def window_key(record: dict[str, Any]) -> WindowKey:
    return (
        record["stream_id"],
        record["rule"],
        record["kind"],
        record["label"],
        record["window_start_us"],
    )


def event_json(record: dict[str, Any]) -> dict[str, Any]:
    """An event as JSON: the Avro fields, its times in ISO 8601, and ``type``."""
    return {
        "type": EVENT,
        **record,
        "start_time": iso(record["start_ts_us"]),
        "end_time": iso(record["end_ts_us"]),
    }


def counts_json(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": COUNTS,
        **record,
        "window_start": iso(record["window_start_us"]),
        "window_end": iso(record["window_end_us"]),
    }


def detections_json(record: dict[str, Any]) -> dict[str, Any]:
    return {"type": DETECTIONS, **record, "capture_time": iso(record["capture_ts_us"])}


def to_json(item: SinkItem) -> dict[str, Any]:
    assert item.value is not None, "decoded first"
    convert = {EVENT: event_json, COUNTS: counts_json, DETECTIONS: detections_json}[item.kind]
    return convert(item.value)


def body(item: SinkItem) -> bytes:
    """The exact bytes a webhook or an MQTT message carries (compact, keys in Avro order)."""
    return json.dumps(to_json(item), separators=(",", ":"), allow_nan=False).encode()


@dataclass
class Batch:
    """Records written together, then committed together."""

    seq: int
    items: list[SinkItem] = field(default_factory=list)

    def todo(self, kind: Kind | None = None) -> list[SinkItem]:
        """Decoded items neither written nor revoked (of one kind), in the order read."""
        return [
            i
            for i in self.items
            if not i.done and not i.revoked and i.value is not None and kind in (None, i.kind)
        ]

    def latest_counts(self) -> list[SinkItem]:
        """One counts item per window key: the highest revision (the later record on a tie),
        so a single statement never touches one row twice."""
        best: dict[WindowKey, SinkItem] = {}
        for item in self.todo(COUNTS):
            assert item.value is not None
            key = window_key(item.value)
            kept = best.get(key)
            if kept is None or item.value["revision"] >= (kept.value or {})["revision"]:
                best[key] = item
        return list(best.values())

    def positions(self) -> dict[tuple[str, int], int]:
        """What to commit: per partition, the offset after its last record not revoked."""
        out: dict[tuple[str, int], int] = {}
        for item in self.items:
            if not item.revoked:
                where = (item.topic, item.partition)
                out[where] = max(out.get(where, 0), item.offset + 1)
        return out

    def live(self) -> int:
        return sum(1 for i in self.items if not i.revoked)
