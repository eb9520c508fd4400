"""Per-track state machines: line hysteresis, zone enter/exit and the loitering lifecycle."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.analytics.events import Sighting, event_id
from pipeline.analytics.lines import LineSide
from pipeline.analytics.zones import ZonePresence


def seen(frame_id: int, ts_s: float = 0.0, score: float = 0.5) -> Sighting:
    return Sighting(frame_id, int(ts_s * 1e6), score, (0.0, 0.0, 1.0, 1.0))


def feed(line: LineSide, sides: list[int]) -> list[tuple[int, str]]:
    out = []
    for i, side in enumerate(sides):
        crossing = line.observe(side, seen(i))
        if crossing is not None:
            out.append((crossing.first.frame_id, crossing.direction))
    return out


def test_a_crossing_needs_min_frames_on_the_new_side_and_is_dated_at_the_first() -> None:
    assert feed(LineSide(3), [1, 1, 1, -1, -1, -1, -1]) == [(3, "in")]
    assert feed(LineSide(3), [-1, -1, -1, 1, 1, 1]) == [(3, "out")]


def test_flicker_on_the_line_does_not_count() -> None:
    assert feed(LineSide(3), [1, 1, 1, -1, 1, -1, -1, 1, 1, 0, 1]) == []


def test_on_the_line_neither_breaks_nor_extends_a_run() -> None:
    assert feed(LineSide(3), [1, 1, 1, -1, 0, 0, -1, 0, -1]) == [(3, "in")]


def test_appearing_on_a_side_is_no_crossing() -> None:
    assert feed(LineSide(2), [-1, -1, -1]) == []


def test_back_and_forth_counts_each_confirmed_change_once() -> None:
    sides = [1] * 3 + [-1] * 3 + [1] * 3 + [-1] * 3
    assert feed(LineSide(3), sides) == [(3, "in"), (6, "out"), (9, "in")]


def zone_feed(zone: ZonePresence, inside: Sequence[bool | None], fps: float = 10.0) -> list[str]:
    out = []
    for i, flag in enumerate(inside):
        for change in zone.observe(flag, seen(i, i / fps, score=0.5 + i / 1000)):
            out.append(f"{change.kind}:{change.phase}@{change.start_ts_us // 100_000}")
    return out


def test_zone_enter_and_exit_with_hysteresis() -> None:
    zone = ZonePresence(min_frames=3, loiter_s=0, loiter_update_s=5)
    flags = [False] * 2 + [True] * 2 + [False] + [True] * 5 + [False] * 3
    # frames 5..9 inside (the blip at 2-3 is too short); outside from 10, confirmed at 12
    assert zone_feed(zone, flags) == ["zone_enter:@5", "zone_exit:@5"]
    assert zone.inside is False


def test_sightings_on_the_edge_neither_enter_nor_leave() -> None:
    zone = ZonePresence(min_frames=3, loiter_s=0, loiter_update_s=5)
    flags: list[bool | None] = [False, False, False, True, None, True, None, True]
    assert zone_feed(zone, flags) == ["zone_enter:@3"]  # the edge neither breaks the run
    assert zone_feed(zone, [None] * 10) == []  # standing on the edge: inside, no events
    assert zone.inside is True


def test_a_track_that_appears_inside_enters() -> None:
    zone = ZonePresence(min_frames=2, loiter_s=0, loiter_update_s=5)
    assert zone_feed(zone, [True, True]) == ["zone_enter:@0"]


def test_loitering_starts_updates_at_most_every_update_s_and_ends_on_exit() -> None:
    zone = ZonePresence(min_frames=1, loiter_s=1.0, loiter_update_s=0.5)
    changes = []
    for i in range(26):  # inside for 2.5 s at 10 fps
        changes += [(c.kind, c.phase, c.end_ts_us) for c in zone.observe(True, seen(i, i / 10))]
    changes += [(c.kind, c.phase, c.end_ts_us) for c in zone.observe(False, seen(26, 2.6))]
    assert changes == [
        ("zone_enter", "", 0),
        ("loitering", "start", 1_000_000),
        ("loitering", "update", 1_500_000),
        ("loitering", "update", 2_000_000),
        ("loitering", "update", 2_500_000),
        ("loitering", "end", 2_500_000),  # last seen inside
        ("zone_exit", "", 2_600_000),
    ]


def test_a_lost_track_leaves_at_its_last_time_inside_with_its_best_frame() -> None:
    zone = ZonePresence(min_frames=1, loiter_s=0.2, loiter_update_s=10)
    for i in range(5):
        zone.observe(True, seen(i, i / 10, score=[0.3, 0.9, 0.4, 0.5, 0.6][i]))
    changes = zone.lost()
    assert [(c.kind, c.phase) for c in changes] == [("loitering", "end"), ("zone_exit", "")]
    assert changes[-1].end_ts_us == 400_000 and changes[-1].best.frame_id == 1
    assert zone.lost() == []


def test_event_ids_are_deterministic_and_distinct() -> None:
    a = event_id("cam", "door", "line_crossed", "", 3, 120)
    assert a == event_id("cam", "door", "line_crossed", "", 3, 120)
    assert a != event_id("cam", "door", "line_crossed", "", 3, 121)
    assert a != event_id("cam2", "door", "line_crossed", "", 3, 120)
