"""The analytics of one stream: tracked frames in, events and window results out.

``apply`` is idempotent over the input log: each stream remembers the offset of the last
detections record it applied and ignores one at or below it, so a record redelivered after
a failover (delivery is at least once) never counts twice. What must survive a crash (the
windows, the totals, that offset) is ``to_state``; the tracker and the per-track line and
zone states start afresh after a restore, which costs the crossings in progress then.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pipeline.analytics.events import Event, Sighting
from pipeline.analytics.geometry import anchor_point, line_side, zone_side
from pipeline.analytics.lines import LineSide
from pipeline.analytics.tracking import Detected, StreamTracker, Tracked, TrackerSettings
from pipeline.analytics.windows import WindowResult, Windows
from pipeline.analytics.zones import ZonePresence
from pipeline.protocol.rules import StreamRules, wants


@dataclass(frozen=True)
class FrameIn:
    """One detections record, as analytics needs it."""

    stream_id: str
    frame_id: int
    capture_ts_us: int
    width: int
    height: int
    objects: list[Detected]
    frame_partition: int = -1
    frame_offset: int = -1


@dataclass(frozen=True)
class TrackedObject:
    tracked: Tracked
    zones: tuple[str, ...]  # the zones its track is confirmed inside


@dataclass(frozen=True)
class FrameOut:
    frame: FrameIn
    objects: list[TrackedObject]
    events: list[Event]
    counts: list[WindowResult]


@dataclass
class _Track:
    class_id: int
    label: str
    last_seen_us: int
    lines: dict[str, LineSide] = field(default_factory=dict)
    zones: dict[str, ZonePresence] = field(default_factory=dict)


class StreamAnalytics:
    def __init__(
        self,
        stream_id: str,
        rules: StreamRules | None,
        *,
        window_s: float,
        grace_s: float,
        tracker: TrackerSettings | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.rules = rules
        self.windows = Windows(window_s, grace_s)
        self.last_offset = -1
        self._tracker_settings = tracker or TrackerSettings()
        self._tracker = StreamTracker(self._tracker_settings)
        self._tracks: dict[int, _Track] = {}

    def set_rules(self, rules: StreamRules | None) -> None:
        """New rules take effect at the next frame; track states of changed rules restart."""
        if rules == self.rules:
            return
        self.rules = rules
        for track in self._tracks.values():
            track.lines.clear()
            track.zones.clear()

    def apply(self, offset: int, frame: FrameIn) -> FrameOut | None:
        """Apply the record at this input offset; None when it was applied before."""
        if offset <= self.last_offset:
            return None
        self.last_offset = offset
        ts = frame.capture_ts_us
        tracked = self._tracker.update(ts, frame.objects)
        events: list[Event] = []
        objects: list[TrackedObject] = []
        rules = self.rules
        for t in tracked:
            zones: tuple[str, ...] = ()
            if t.track_id >= 0 and rules is not None:
                zones = self._observe(rules, frame, t, events)
            objects.append(TrackedObject(t, zones))
        if rules is not None:
            self._count_occupancy(rules, ts)
            self._expire(rules, frame, events)
        return FrameOut(frame, objects, events, self.windows.advance(ts))

    def _observe(
        self, rules: StreamRules, frame: FrameIn, t: Tracked, events: list[Event]
    ) -> tuple[str, ...]:
        d = t.detected
        track = self._tracks.get(t.track_id)
        if track is None:
            track = self._tracks[t.track_id] = _Track(d.class_id, d.label, frame.capture_ts_us)
        track.class_id, track.label, track.last_seen_us = d.class_id, d.label, frame.capture_ts_us
        sighting = Sighting(
            frame.frame_id,
            frame.capture_ts_us,
            d.score,
            d.box,
            frame.frame_partition,
            frame.frame_offset,
        )
        p = anchor_point(d.box, rules.anchor, frame.width, frame.height)
        size = (max(frame.width, 1), max(frame.height, 1))  # as anchor_point: never 0
        for line in rules.lines:
            if not wants(line.classes, d.label):
                continue
            side = track.lines.setdefault(line.name, LineSide(line.min_frames))
            crossing = side.observe(line_side(line.a, line.b, p, line.margin, size), sighting)
            if crossing is None:
                continue
            at = crossing.first.capture_ts_us
            events.append(
                self._event(
                    line.name,
                    "line_crossed",
                    "",
                    track,
                    t.track_id,
                    crossing.direction,
                    at,
                    at,
                    crossing.first,
                    frame,
                )
            )
            self.windows.add(at, line.name, "line", d.label, crossing.direction, 1)
        inside: list[str] = []
        for zone in rules.zones:
            if not wants(zone.classes, d.label):
                continue
            presence = track.zones.get(zone.name)
            if presence is None:
                presence = track.zones[zone.name] = ZonePresence(
                    zone.min_frames, zone.loiter_s, zone.loiter_update_s
                )
            where = zone_side(p, zone.polygon, zone.margin, size)
            for change in presence.observe(None if where == 0 else where > 0, sighting):
                events.append(
                    self._event(
                        zone.name,
                        change.kind,
                        change.phase,
                        track,
                        t.track_id,
                        "",
                        change.start_ts_us,
                        change.end_ts_us,
                        change.best,
                        frame,
                    )
                )
                if change.kind == "zone_enter":
                    self.windows.add(change.start_ts_us, zone.name, "zone", d.label, "entries", 1)
            if presence.inside:
                inside.append(zone.name)
        return tuple(inside)

    def _count_occupancy(self, rules: StreamRules, ts: int) -> None:
        occupancy: dict[tuple[str, str], int] = defaultdict(int)
        for track in self._tracks.values():
            for name, presence in track.zones.items():
                if presence.inside:
                    occupancy[(name, track.label)] += 1
        for zone in rules.zones:
            for (name, label), n in sorted(occupancy.items()):
                if name == zone.name:
                    self.windows.add(ts, name, "zone", label, "peak", n)

    def _expire(self, rules: StreamRules, frame: FrameIn, events: list[Event]) -> None:
        horizon = frame.capture_ts_us - int(rules.track_lost_s * 1e6)
        for track_id in sorted(self._tracks):
            track = self._tracks[track_id]
            if track.last_seen_us >= horizon:
                continue
            for name, presence in track.zones.items():
                for change in presence.lost():
                    events.append(
                        self._event(
                            name,
                            change.kind,
                            change.phase,
                            track,
                            track_id,
                            "",
                            change.start_ts_us,
                            change.end_ts_us,
                            change.best,
                            frame,
                        )
                    )
            del self._tracks[track_id]

    def _event(
        self, rule: str, kind: str, phase: str, track: _Track, track_id: int, direction: str,
        start_us: int, end_us: int, best: Sighting, frame: FrameIn,
    ) -> Event:  # fmt: skip
        return Event(
            stream_id=self.stream_id, rule=rule, kind=kind, phase=phase, label=track.label,
            class_id=track.class_id, track_id=track_id, direction=direction,
            start_ts_us=start_us, end_ts_us=end_us, best=best, trigger_frame_id=frame.frame_id,
        )  # fmt: skip

    def to_state(self) -> dict[str, Any]:
        """What a changelogged table keeps for this stream (JSON-able)."""
        return {"last_offset": self.last_offset, "windows": self.windows.to_state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from to_state(); the tracker and track states start afresh."""
        self.last_offset = int(state["last_offset"])
        self.windows = Windows.from_state(state["windows"])
        self._tracker = StreamTracker(self._tracker_settings)
        self._tracks.clear()
