"""The gateway's view of vae.counts: latest revision per window, bounded, totals kept."""

from __future__ import annotations

from pipeline.gateway.counts_board import CountsBoard
from pipeline.protocol.routes import BadRequest, Events, Http, RulesEdit, route
from pipeline.serde import CountsRecord


def counts(start: int, crossed_in: int, revision: int = 0, peak: int = 0) -> CountsRecord:
    return {
        "stream_id": "cam", "rule": "door", "kind": "line", "label": "person",
        "window_start_us": start, "window_end_us": start + 60, "crossed_in": crossed_in,
        "crossed_out": 0, "entries": 0, "peak_occupancy": peak, "revision": revision,
    }  # fmt: skip


def test_a_later_revision_replaces_its_window_and_totals_add_windows() -> None:
    board = CountsBoard()
    board.apply(counts(0, 2))
    board.apply(counts(0, 3, revision=1))
    board.apply(counts(0, 1, revision=0))  # a stale revision redelivered: ignored
    board.apply(counts(60, 4, peak=2))
    summary = board.summary("cam")
    assert summary is not None
    assert summary["totals"] == [
        {"rule": "door", "kind": "line", "label": "person", "crossed_in": 7, "crossed_out": 0,
         "entries": 0, "peak_occupancy": 2}
    ]  # fmt: skip
    assert [w["crossed_in"] for w in summary["windows"]] == [3, 4]
    assert board.summary("other") is None


def test_old_windows_fold_into_the_totals() -> None:
    board = CountsBoard(keep_windows=2)
    for i in range(5):
        board.apply(counts(i * 60, 1))
    summary = board.summary("cam")
    assert summary is not None
    assert [w["window_start_us"] for w in summary["windows"]] == [180, 240]
    assert summary["totals"][0]["crossed_in"] == 5


def test_routes_of_the_analytics_endpoints() -> None:
    assert route("/v1/events?streams=a,b") == Events(frozenset({"a", "b"}))
    assert route("/v1/events?streams=*") == Events(None)
    assert route("/v1/events") == Events(None)
    assert route("/v1/streams/cam-1/counts") == Http("counts", stream_id="cam-1")
    assert route("/v1/rules") == RulesEdit()
    bad = route("/v1/events?streams=a/b")
    assert isinstance(bad, BadRequest) and bad.websocket
