"""`vae bench gating`'s clips and its recalls: of objects on real frames of the sample clip,
and of line crossings and zone entries through the analytics core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import simplejpeg

from pipeline.analytics.events import Event, Sighting
from pipeline.config import SettingsError
from pipeline.inference.detections import Detections
from pipeline.shell.bench.gating import build_clip, clip_frames, recall, static_shares
from pipeline.shell.bench.gating_events import (
    STREAM,
    Tally,
    bench_rules,
    match_events,
    replay,
)
from tests.sample_clip import sample_frames


@pytest.fixture(scope="module")
def moving(media: Path) -> list[npt.NDArray[np.uint8]]:
    return sample_frames(media, 12)


def test_a_clip_holds_its_static_share_of_noisy_stills(
    moving: list[npt.NDArray[np.uint8]],
) -> None:
    jpegs, still = build_clip(moving, frames=40, static_share=0.9, period=20, noise=3.0)
    assert len(jpegs) == len(still) == 40
    assert still == ([False] * 2 + [True] * 18) * 2
    # A still frame is the last moving frame again, with its own noise and encoding.
    held = simplejpeg.decode_jpeg(jpegs[2]).astype(np.float32)
    again = simplejpeg.decode_jpeg(jpegs[3]).astype(np.float32)
    source = moving[1].astype(np.float32)
    assert jpegs[2] != jpegs[3]
    assert np.abs(held - source).mean() < 4 and np.abs(again - source).mean() < 4
    # The moving frames go on through the clip: the second period starts at its 3rd frame.
    third = simplejpeg.decode_jpeg(jpegs[20]).astype(np.float32)
    assert np.abs(third - moving[2].astype(np.float32)).mean() < 2


def test_no_static_share_is_the_clip_itself(moving: list[npt.NDArray[np.uint8]]) -> None:
    jpegs, still = build_clip(moving, frames=12, static_share=0.0, period=100, noise=3.0)
    assert not any(still) and len(jpegs) == 12


def boxes(*rows: tuple[int, float, float, float, float]) -> Detections:
    return Detections(
        np.asarray([r[1:] for r in rows], np.float32).reshape(-1, 4),
        np.full(len(rows), 0.9, np.float32),
        np.asarray([r[0] for r in rows], np.int32),
    )


def test_recall_counts_same_class_boxes_that_overlap() -> None:
    reference = [boxes((0, 0, 0, 10, 10), (2, 20, 20, 40, 40)), boxes((0, 0, 0, 10, 10))]
    got = [boxes((0, 1, 0, 11, 10), (0, 20, 20, 40, 40)), boxes((0, 0, 0, 10, 10))]
    # frame 0: the person matches (IoU 0.82), the car does not (a person there); frame 1: 1/1
    assert recall(reference, got) == pytest.approx(2 / 3)
    assert recall([Detections.empty()], [boxes((0, 0, 0, 1, 1))]) == 1.0


def test_shares_are_percentages() -> None:
    assert static_shares("0,50,90") == [0.0, 0.5, 0.9]
    with pytest.raises(SettingsError):
        static_shares("100")


def test_a_clip_of_the_whole_footage_holds_each_moving_frame_once(
    moving: list[npt.NDArray[np.uint8]],
) -> None:
    # 12 moving frames, 3 per period of 10 (70% still): 4 periods, the last with no still.
    frames = clip_frames(len(moving), 0.7, 10)
    assert frames == 33
    jpegs, still = build_clip(moving, frames, 0.7, 10, noise=3.0)
    assert still == ([False] * 3 + [True] * 7) * 3 + [False] * 3
    last = simplejpeg.decode_jpeg(jpegs[-1]).astype(np.float32)
    assert np.abs(last - moving[11].astype(np.float32)).mean() < 2  # no wrap to frame 0
    assert clip_frames(795, 0.9, 100) == 7905 and clip_frames(795, 0.0, 100) == 795
    with pytest.raises(SettingsError):
        clip_frames(12, 0.999, 100)  # a period with no moving frame


def event(rule: str, kind: str, at_s: float, direction: str = "", label: str = "person") -> Event:
    at = round(at_s * 1e6)
    return Event(
        stream_id=STREAM, rule=rule, kind=kind, label=label, class_id=0, track_id=7,
        direction=direction, start_ts_us=at, end_ts_us=at,
        best=Sighting(0, at, 0.9, (0.0, 0.0, 1.0, 1.0)), trigger_frame_id=0,
    )  # fmt: skip


def test_events_match_by_rule_kind_direction_and_label_within_the_tolerance() -> None:
    reference = [
        event("door", "line_crossed", 1.0, "in"),
        event("door", "line_crossed", 5.0, "out"),
        event("lobby", "zone_enter", 9.0),
        event("lobby", "zone_enter", 20.0, label="car"),
    ]
    got = [
        event("door", "line_crossed", 1.9, "in"),  # 0.9 s late: matched
        event("door", "line_crossed", 5.0, "in"),  # the other direction: extra
        event("hall", "zone_enter", 9.0),  # another rule: extra
        event("lobby", "zone_enter", 20.0),  # a person, not the car: extra
        event("lobby", "zone_enter", 10.5),  # 1.5 s late: extra
    ]
    found = match_events(reference, got, tolerance_s=1.0)
    assert (found.reference, found.got, found.matched, found.extra) == (4, 5, 1, 4)
    assert found.recall == 0.25
    assert found.missed == (1, 2, 3) and found.extras == (1, 2, 3, 4)  # their indices
    assert match_events(reference, got, tolerance_s=1.5).matched == 2
    empty = match_events([], got, tolerance_s=1.0)
    assert empty.recall == 1.0 and empty.extra == 5


def test_matching_is_one_to_one_and_finds_the_most_pairs() -> None:
    crossing = "line_crossed"
    reference = [event("door", crossing, 1.0, "in"), event("door", crossing, 1.8, "in")]
    # Matching the closest pair first (1.8 with 1.5) would leave 1.0 and 2.6 apart; in time
    # order each reference takes the earliest free one: 1.0-1.5 and 1.8-2.6.
    got = [event("door", crossing, 1.5, "in"), event("door", crossing, 2.6, "in")]
    assert match_events(reference, got, tolerance_s=1.0).matched == 2
    # Two gated events near one reference event: one matches, the other is extra.
    twice = match_events(reference[:1], got[:1] * 2, tolerance_s=1.0)
    assert (twice.matched, twice.extra, twice.recall) == (1, 1, 1.0)


def test_tally_counts_crossings_by_direction_and_entries() -> None:
    events = [
        event("door", "line_crossed", 1.0, "in"),
        event("door", "line_crossed", 2.0, "out"),
        event("door", "line_crossed", 3.0, "out"),
        event("lobby", "zone_enter", 4.0),
    ]
    assert Tally.of(events) == Tally(crossings_in=1, crossings_out=2, entries=1)


def person(x: float) -> Detections:
    """A person (COCO class 0) whose bottom centre is at x, a fraction of 768 px."""
    return boxes((0, x * 768 - 30, 150.0, x * 768 + 30, 400.0))


def test_replay_runs_records_through_the_analytics_at_the_clips_capture_times() -> None:
    rules = bench_rules("")  # the line at x = 0.7, the zone over x 0.3-0.65, y 0.35-0.75
    walk = [person(0.21 + 0.02 * i) for i in range(40)]  # into the zone, then across the line
    events = replay(walk, [True] * 40, rules, width=768, height=576, fps=10.0,
                    window_s=60.0, grace_s=5.0)  # fmt: skip
    tally = Tally.of(events)
    assert tally.entries == 1 and tally.crossings_in + tally.crossings_out == 1
    entry = next(e for e in events if e.kind == "zone_enter")
    crossing = next(e for e in events if e.kind == "line_crossed")
    # x passes 0.3 at frame 5 (0.5 s), 0.7 at frame 25 (2.5 s): the first frame past it
    assert entry.event_ts_us == 500_000 and crossing.event_ts_us == 2_500_000
    assert entry.label == crossing.label == "person"
    # Gated frames carry the last inferred box: it stands still, then jumps. Every other
    # frame gated: jumps of 31 px on a 60 px box still overlap, the track holds, both count.
    assert match_events(events, replay_gated(walk, 2), tolerance_s=1.0).recall == 1.0
    # Three in four gated: 61 px jumps, no overlap; each jump starts a new track that never
    # lives the frames a line or zone needs. The way gating can lose events.
    assert replay_gated(walk, 4) == []


def replay_gated(walk: list[Detections], every: int) -> list[Event]:
    """The walk as a gated run inferring one frame in ``every``."""
    gated = [walk[i - i % every] for i in range(len(walk))]
    inferred = [i % every == 0 for i in range(len(walk))]
    return replay(gated, inferred, bench_rules(""), width=768, height=576, fps=10.0,
                  window_s=60.0, grace_s=5.0)  # fmt: skip


def test_a_rules_file_must_hold_something_for_the_benchmarks_stream(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        'streams:\n  "door-*":\n    lines:\n      - {name: d, points: [[0.5, 0], [0.5, 1]]}\n'
    )
    with pytest.raises(SettingsError, match="bench-gating"):
        bench_rules(str(rules))
    rules.write_text("streams: [")
    with pytest.raises(SettingsError, match="--rules"):
        bench_rules(str(rules))
    default = bench_rules("")
    assert [line.name for line in default.lines] == ["walkway"]
    assert [zone.name for zone in default.zones] == ["square"]
