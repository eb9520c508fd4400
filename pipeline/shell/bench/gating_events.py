"""Line crossings and zone entries for `vae bench gating`: what gating costs the analytics.

Objects found per frame do not say whether the analytics still count right: a gated frame
repeats the last inferred boxes, so a walker's box stands still and then jumps, and the
tracker and the line and zone state machines see that. So each run's Detections records (the
ones the worker would publish, gated frames carrying the last inferred objects) go through
the analytics core itself (`StreamAnalytics`: ByteTrack per stream, lines, zones) with the
same rules, and the gated run's events are matched one to one with every-frame inference's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.analytics.convert import frame_in
from pipeline.analytics.events import Event
from pipeline.analytics.rules_file import load_rules
from pipeline.analytics.stream import StreamAnalytics
from pipeline.config import SettingsError
from pipeline.inference.detections import Detections
from pipeline.inference.labels import COCO_CLASSES
from pipeline.protocol.rules import RulesError, StreamRules, parse_rules
from pipeline.serde.records import FrameRecord, StageTimings, detected_objects, detections_record

STREAM = "bench-gating"
COUNTED = ("line_crossed", "zone_enter")

# Placed on the sample clip (vtest.avi, 768x576) where its people walk: the line across the
# road right of the lamp post, the zone over the road and lawn around the lamp post.
# Every-frame inference of the whole clip gives 35 crossings and 35 entries of people.
DEFAULT_RULES = """\
streams:
  "*":
    lines:
      - name: walkway
        points: [[0.7, 0.25], [0.7, 0.95]]
        classes: [person]
    zones:
      - name: square
        polygon: [[0.3, 0.35], [0.65, 0.35], [0.65, 0.75], [0.3, 0.75]]
        classes: [person]
"""

_NO_TIMINGS: StageTimings = {
    "queue_ms": 0.0,
    "decode_ms": 0.0,
    "preprocess_ms": 0.0,
    "inference_ms": 0.0,
    "postprocess_ms": 0.0,
    "batch_size": 0,
}


def bench_rules(path: str) -> StreamRules:
    """The rules applying to the benchmark's stream: a rules file's, or DEFAULT_RULES."""
    try:
        rules = (load_rules(path) if path else parse_rules(DEFAULT_RULES)).for_stream(STREAM)
    except RulesError as exc:
        raise SettingsError(f"--rules: {exc}") from None
    if rules is None or not (rules.lines or rules.zones):
        raise SettingsError(f"--rules: no line or zone applies to stream {STREAM!r}")
    return rules


def replay(
    detections: Sequence[Detections],
    inferred: Sequence[bool],
    rules: StreamRules,
    *,
    width: int,
    height: int,
    fps: float,
    window_s: float,
    grace_s: float,
) -> list[Event]:
    """The crossings and entries the analytics make of one run: frame i captured at i/fps,
    as the worker's records (labels, the inferred flag) and through `frame_in`."""
    analytics = StreamAnalytics(STREAM, rules, window_s=window_s, grace_s=grace_s)
    events: list[Event] = []
    for index, (found, fresh) in enumerate(zip(detections, inferred, strict=True)):
        frame: FrameRecord = {
            "stream_id": STREAM,
            "frame_id": index,
            "capture_ts_us": round(index * 1e6 / fps),
            "gateway_ts_us": round(index * 1e6 / fps),
            "width": width,
            "height": height,
            "encoding": "jpeg",
            "image": b"",
        }
        record = detections_record(
            frame, detected_objects(found, COCO_CLASSES), worker_ts_us=frame["capture_ts_us"],
            model="bench", worker="bench", timings=_NO_TIMINGS, inferred=fresh,
            frame_partition=0, frame_offset=index,
        )  # fmt: skip
        out = analytics.apply(index, frame_in(record))
        if out is not None:
            events += [e for e in out.events if e.kind in COUNTED]
    return events


@dataclass(frozen=True)
class Tally:
    """One run's events by kind."""

    crossings_in: int
    crossings_out: int
    entries: int

    @classmethod
    def of(cls, events: Sequence[Event]) -> Tally:
        crossings = [e for e in events if e.kind == "line_crossed"]
        return cls(
            crossings_in=sum(e.direction == "in" for e in crossings),
            crossings_out=sum(e.direction == "out" for e in crossings),
            entries=sum(e.kind == "zone_enter" for e in events),
        )


@dataclass(frozen=True)
class EventMatch:
    """The gated run's events against every-frame inference's."""

    reference: int  # every-frame inference's events
    got: int  # the gated run's
    missed: tuple[int, ...]  # reference events with no match (their indices)
    extras: tuple[int, ...]  # the gated run's events with no counterpart (their indices)

    @property
    def matched(self) -> int:
        return self.reference - len(self.missed)

    @property
    def extra(self) -> int:
        return len(self.extras)

    @property
    def recall(self) -> float:
        return self.matched / self.reference if self.reference else 1.0


def _key(e: Event) -> tuple[str, str, str, str]:
    return (e.rule, e.kind, e.direction, e.label)


def match_events(
    reference: Sequence[Event], got: Sequence[Event], tolerance_s: float
) -> EventMatch:
    """Greedy one-to-one matching of events of the same rule, kind, direction and label whose
    times are at most ``tolerance_s`` apart: in time order, each reference event takes the
    earliest gated event still free within its tolerance. (Every event's window is equally
    wide, so this greedy matching is also a largest one.) Track ids differ between runs and
    never count."""
    tolerance_us = round(tolerance_s * 1e6)
    keyed: dict[tuple[str, str, str, str], tuple[list[int], list[int]]] = defaultdict(
        lambda: ([], [])
    )
    for i, e in enumerate(reference):
        keyed[_key(e)][0].append(i)
    for j, e in enumerate(got):
        keyed[_key(e)][1].append(j)
    missed: list[int] = []
    extras: list[int] = []
    for theirs, mine in keyed.values():
        theirs.sort(key=lambda i: reference[i].event_ts_us)
        mine.sort(key=lambda j: got[j].event_ts_us)
        k = 0
        for i in theirs:
            ts = reference[i].event_ts_us
            while k < len(mine) and got[mine[k]].event_ts_us < ts - tolerance_us:
                extras.append(mine[k])  # too early for this reference event and later ones
                k += 1
            if k < len(mine) and got[mine[k]].event_ts_us <= ts + tolerance_us:
                k += 1
            else:
                missed.append(i)
        extras += mine[k:]
    return EventMatch(len(reference), len(got), tuple(sorted(missed)), tuple(sorted(extras)))
