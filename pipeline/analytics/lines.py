"""Line crossing of one track over one line, with hysteresis.

A crossing is reported once the anchor has been seen on the new side for ``min_frames``
observations in a row, so a box flickering on the line never counts twice; its time is the
first of those observations (when the object actually crossed). The first side a track is
confirmed on is only its starting side: appearing next to a line crosses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.analytics.events import Sighting
from pipeline.analytics.geometry import direction


@dataclass(frozen=True)
class Crossing:
    direction: str  # in or out
    first: Sighting  # first sighting on the new side


class LineSide:
    """Which side of a line a track is on, and when it has changed for good."""

    def __init__(self, min_frames: int) -> None:
        self.min_frames = min_frames
        self.side = 0  # confirmed side; 0 until a first side is confirmed
        self._candidate = 0
        self._run = 0
        self._first: Sighting | None = None

    def observe(self, side: int, sighting: Sighting) -> Crossing | None:
        """Feed one observation (side +1, −1, or 0 for on the line / beside the segment)."""
        if side == 0:
            return None  # no evidence either way; a run is neither extended nor broken
        if side == self.side:
            self._candidate, self._run, self._first = 0, 0, None
            return None
        if side != self._candidate:
            self._candidate, self._run, self._first = side, 0, sighting
        self._run += 1
        if self._run < self.min_frames:
            return None
        previous, first = self.side, self._first
        self.side, self._candidate, self._run, self._first = side, 0, 0, None
        if previous == 0 or first is None:
            return None
        return Crossing(direction(previous, side), first)
