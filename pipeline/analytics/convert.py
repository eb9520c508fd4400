"""Between the topics' records and the analytics' own types (pure)."""

from __future__ import annotations

from pipeline.analytics.events import Event
from pipeline.analytics.stream import FrameIn, FrameOut
from pipeline.analytics.tracking import Detected
from pipeline.analytics.windows import WindowResult
from pipeline.serde import CountsRecord, DetectionsRecord, EventRecord, TracksRecord


def frame_in(record: DetectionsRecord) -> FrameIn:
    return FrameIn(
        stream_id=record["stream_id"],
        frame_id=record["frame_id"],
        capture_ts_us=record["capture_ts_us"],
        width=record["width"],
        height=record["height"],
        objects=[
            Detected(o["class_id"], o["label"], o["score"], (o["x1"], o["y1"], o["x2"], o["y2"]))
            for o in record["objects"]
        ],
        # Records from a worker older than these fields say nothing: -1.
        frame_partition=record.get("frame_partition", -1),
        frame_offset=record.get("frame_offset", -1),
    )


def tracks_record(out: FrameOut) -> TracksRecord:
    f = out.frame
    return {
        "stream_id": f.stream_id,
        "frame_id": f.frame_id,
        "capture_ts_us": f.capture_ts_us,
        "width": f.width,
        "height": f.height,
        "objects": [
            {
                "track_id": o.tracked.track_id,
                "class_id": o.tracked.detected.class_id,
                "label": o.tracked.detected.label,
                "score": o.tracked.detected.score,
                "x1": o.tracked.detected.box[0],
                "y1": o.tracked.detected.box[1],
                "x2": o.tracked.detected.box[2],
                "y2": o.tracked.detected.box[3],
                "zones": list(o.zones),
            }
            for o in out.objects
        ],
    }


def event_record(e: Event) -> EventRecord:
    x1, y1, x2, y2 = e.best.box
    return {
        "event_id": e.event_id,
        "stream_id": e.stream_id,
        "rule": e.rule,
        "kind": e.kind,
        "phase": e.phase,
        "label": e.label,
        "class_id": e.class_id,
        "track_id": e.track_id,
        "direction": e.direction,
        "start_ts_us": e.start_ts_us,
        "end_ts_us": e.end_ts_us,
        "frame_id": e.best.frame_id,
        "score": e.best.score,
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "frame_partition": e.best.frame_partition,
        "frame_offset": e.best.frame_offset,
        "trigger_frame_id": e.trigger_frame_id,
    }


def counts_record(stream_id: str, r: WindowResult) -> CountsRecord:
    return {
        "stream_id": stream_id,
        "rule": r.rule,
        "kind": r.kind,
        "label": r.label,
        "window_start_us": r.window_start_us,
        "window_end_us": r.window_end_us,
        "crossed_in": r.counts.crossed_in,
        "crossed_out": r.counts.crossed_out,
        "entries": r.counts.entries,
        "peak_occupancy": r.counts.peak,
        "revision": r.revision,
    }
