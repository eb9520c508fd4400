"""Records of the analytics' topics (events, counts) as the analytics write them, for the
tests that write them by hand: every field has a value, a test names those it is about."""

from __future__ import annotations

from typing import Any, cast

from pipeline.analytics.events import event_id
from pipeline.serde import CountsRecord, EventRecord


def event(
    stream_id: str, n: int, *, rule: str = "door", label: str = "person", **fields: Any
) -> EventRecord:
    """The ``n``-th line crossing of a stream, as the analytics write it (same ids);
    ``fields`` replace what the test sets itself."""
    start = 1_700_000_000_000_000 + n * 40_000
    record: EventRecord = {
        "event_id": event_id(stream_id, rule, "line_crossed", "", n, 1000 + n),
        "stream_id": stream_id,
        "rule": rule,
        "kind": "line_crossed",
        "phase": "",
        "label": label,
        "class_id": 0,
        "track_id": n,
        "direction": "in" if n % 2 == 0 else "out",
        "start_ts_us": start,
        "end_ts_us": start,
        "frame_id": 1000 + n,
        "score": 0.875,
        "x1": 10.0,
        "y1": 20.0,
        "x2": 110.0,
        "y2": 220.0,
        "frame_partition": 3,
        "frame_offset": 500 + n,
        "trigger_frame_id": 1000 + n,
    }
    return cast(EventRecord, {**record, **fields})


def counts(
    stream_id: str,
    window: int,
    revision: int,
    *,
    crossed_in: int = 0,
    crossed_out: int = 0,
    rule: str = "door",
    kind: str = "line",
    label: str = "person",
    entries: int = 0,
    peak: int = 0,
) -> CountsRecord:
    start = 1_700_000_000_000_000 + window * 60_000_000
    return {
        "stream_id": stream_id,
        "rule": rule,
        "kind": kind,
        "label": label,
        "window_start_us": start,
        "window_end_us": start + 60_000_000,
        "crossed_in": crossed_in,
        "crossed_out": crossed_out,
        "entries": entries,
        "peak_occupancy": peak,
        "revision": revision,
    }
