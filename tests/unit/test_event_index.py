"""The gateway's index of recent events: bounded, least recently used out first."""

from __future__ import annotations

from pipeline.gateway.event_index import EventIndex, EventRef, event_ref
from pipeline.serde import EventRecord


def record(event_id: str, stream_id: str = "cam-1", end_us: int = 2) -> EventRecord:
    return {
        "event_id": event_id,
        "stream_id": stream_id,
        "rule": "door",
        "kind": "line_crossed",
        "phase": "",
        "label": "person",
        "class_id": 0,
        "track_id": 7,
        "direction": "in",
        "start_ts_us": 1,
        "end_ts_us": end_us,
        "frame_id": 41,
        "score": 0.75,
        "x1": 10.0,
        "y1": 20.0,
        "x2": 30.0,
        "y2": 60.0,
        "frame_partition": 3,
        "frame_offset": 1234,
        "trigger_frame_id": 42,
    }


def test_a_record_gives_what_the_media_need() -> None:
    assert event_ref(record("e1")) == EventRef(
        event_id="e1",
        stream_id="cam-1",
        frame_id=41,
        frame_partition=3,
        frame_offset=1234,
        start_ts_us=1,
        end_ts_us=2,
        box=(10.0, 20.0, 30.0, 60.0),
        label="person",
        score=0.75,
    )


def test_the_least_recently_used_id_goes_first() -> None:
    index = EventIndex(3)
    for name in ("a", "b", "c"):
        index.add(event_ref(record(name)))
    assert index.get("a") is not None  # a lookup makes "a" the most recent
    index.add(event_ref(record("d")))
    assert index.get("b") is None  # the least recently used went
    assert [index.get(n) is not None for n in ("a", "c", "d")] == [True, True, True]
    assert len(index) == 3


def test_a_newer_record_of_an_id_replaces_it_and_refreshes_it() -> None:
    index = EventIndex(2)
    index.add(event_ref(record("a", end_us=5)))
    index.add(event_ref(record("b")))
    index.add(event_ref(record("a", end_us=9)))  # e.g. an event read twice, or updated
    index.add(event_ref(record("c")))
    found = index.get("a")
    assert found is not None and found.end_ts_us == 9
    assert index.get("b") is None and len(index) == 2


def test_size_zero_keeps_nothing() -> None:
    index = EventIndex(0)
    index.add(event_ref(record("a")))
    assert index.get("a") is None and len(index) == 0
