"""Presence of one track in one zone: enter, exit, and the loitering lifecycle.

Inside and outside are confirmed with the same hysteresis as lines (``min_frames``
observations in a row); a sighting on the zone's edge (within its margin) is evidence of
neither, so it neither extends nor breaks a run, and a track inside stays inside. A track
starts outside, so one that appears in a zone enters it.
Loitering starts once a track has been inside for ``loiter_s`` of event time, is updated
at most every ``loiter_update_s``, and ends when the track leaves or is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.analytics.events import Sighting


@dataclass(frozen=True)
class ZoneChange:
    kind: str  # zone_enter, zone_exit or loitering
    phase: str  # loitering: start, update, end; "" otherwise
    start_ts_us: int
    end_ts_us: int
    best: Sighting


class ZonePresence:
    def __init__(self, min_frames: int, loiter_s: float, loiter_update_s: float) -> None:
        self.min_frames = min_frames
        self.loiter_us = int(loiter_s * 1e6)
        self.update_us = int(loiter_update_s * 1e6)
        self.inside = False
        self._run = 0
        self._first: Sighting | None = None
        self._entered: Sighting | None = None
        self._best: Sighting | None = None  # highest score while inside
        self._last_inside: Sighting | None = None
        self._loitering = False
        self._last_update_us = 0

    def observe(self, inside: bool | None, sighting: Sighting) -> list[ZoneChange]:
        """Feed one sighting: inside, outside, or None for on the edge."""
        changes: list[ZoneChange] = []
        if inside is None:
            if self.inside:
                self._seen_inside(sighting)
                changes.extend(self._loiter(sighting))
            return changes
        if inside == self.inside:
            self._run, self._first = 0, None
        else:
            if self._run == 0:
                self._first = sighting
            self._run += 1
            if self._run >= self.min_frames and self._first is not None:
                first = self._first
                self._run, self._first = 0, None
                if inside:
                    self._enter(first)
                    changes.append(
                        ZoneChange(
                            "zone_enter", "", first.capture_ts_us, first.capture_ts_us, first
                        )
                    )
                else:
                    changes.extend(self._leave(first.capture_ts_us))
                    return changes
        if self.inside and inside:
            self._seen_inside(sighting)
            changes.extend(self._loiter(sighting))
        return changes

    def lost(self) -> list[ZoneChange]:
        """The track is gone: it leaves at the last time it was seen inside."""
        if not self.inside or self._last_inside is None:
            return []
        return self._leave(self._last_inside.capture_ts_us)

    def _enter(self, first: Sighting) -> None:
        self.inside = True
        self._entered = first
        self._best = first
        self._last_inside = first
        self._loitering = False

    def _seen_inside(self, sighting: Sighting) -> None:
        self._last_inside = sighting
        if self._best is None or sighting.score > self._best.score:
            self._best = sighting

    def _loiter(self, sighting: Sighting) -> list[ZoneChange]:
        if self.loiter_us <= 0 or self._entered is None or self._best is None:
            return []
        start = self._entered.capture_ts_us
        now = sighting.capture_ts_us
        if not self._loitering:
            if now - start < self.loiter_us:
                return []
            self._loitering = True
            self._last_update_us = now
            return [ZoneChange("loitering", "start", start, now, self._best)]
        if now - self._last_update_us < self.update_us:
            return []
        self._last_update_us = now
        return [ZoneChange("loitering", "update", start, now, self._best)]

    def _leave(self, exit_ts_us: int) -> list[ZoneChange]:
        assert self._entered is not None and self._best is not None
        start, best = self._entered.capture_ts_us, self._best
        changes = []
        if self._loitering:
            last = self._last_inside.capture_ts_us if self._last_inside else exit_ts_us
            changes.append(ZoneChange("loitering", "end", start, last, best))
        changes.append(ZoneChange("zone_exit", "", start, exit_ts_us, best))
        self.inside = False
        self._entered = self._best = self._last_inside = None
        self._loitering = False
        return changes
