"""Tumbling windows in event time: boundaries, the grace period and late data."""

from __future__ import annotations

import json

from pipeline.analytics.windows import Windows, window_start

S = 1_000_000  # one second in microseconds


def summary(results: list) -> list[tuple[int, str, int, int, int]]:  # type: ignore[type-arg]
    return [
        (r.window_start_us // S, r.label, r.counts.crossed_in, r.counts.crossed_out, r.revision)
        for r in results
    ]


def test_window_boundaries_are_half_open() -> None:
    assert window_start(59 * S + 999_999, 60 * S) == 0
    assert window_start(60 * S, 60 * S) == 60 * S


def test_a_window_is_emitted_when_the_watermark_reaches_its_end() -> None:
    w = Windows(size_s=60, grace_s=10)
    w.add(5 * S, "door", "line", "person", "in", 1)
    w.add(59 * S, "door", "line", "person", "in", 1)
    w.add(30 * S, "door", "line", "person", "out", 1)
    assert w.advance(59 * S) == []
    assert summary(w.advance(60 * S)) == [(0, "person", 2, 1, 0)]
    assert w.advance(61 * S) == []  # emitted once


def test_late_data_within_grace_updates_and_re_emits_its_window() -> None:
    w = Windows(size_s=60, grace_s=10)
    w.add(10 * S, "door", "line", "person", "in", 1)
    assert summary(w.advance(65 * S)) == [(0, "person", 1, 0, 0)]
    assert w.add(50 * S, "door", "line", "person", "in", 1) is True  # 15 s late, window in grace
    assert summary(w.advance(66 * S)) == [(0, "person", 2, 0, 1)]
    assert w.advance(70 * S) == []  # grace over: the window is final
    assert w.add(59 * S, "door", "line", "person", "in", 1) is False
    assert w.late_dropped == 1
    assert [(r.window_start_us, r.counts.crossed_in) for r in w.recent()] == [(0, 2)]
    assert w.totals[("door", "line", "person")].crossed_in == 2


def test_peak_is_a_maximum_and_entries_a_sum() -> None:
    w = Windows(size_s=1, grace_s=0)
    for ts, occupancy in [(0, 1), (100_000, 3), (200_000, 2)]:
        w.add(ts, "lobby", "zone", "person", "peak", occupancy)
    w.add(100_000, "lobby", "zone", "person", "entries", 1)
    w.add(150_000, "lobby", "zone", "person", "entries", 1)
    (result,) = w.advance(S)
    assert (result.counts.peak, result.counts.entries) == (3, 2)


def test_state_round_trips_through_json() -> None:
    w = Windows(size_s=60, grace_s=10)
    w.add(10 * S, "door", "line", "person", "in", 1)
    w.advance(65 * S)
    w.add(20 * S, "door", "line", "car", "out", 1)
    restored = Windows.from_state(json.loads(json.dumps(w.to_state())))
    assert restored.to_state() == w.to_state()
    assert summary(restored.advance(66 * S)) == summary(w.advance(66 * S))
