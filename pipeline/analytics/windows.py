"""Tumbling windows in event time (capture timestamps) for one stream.

A window [start, start + size) closes once the stream's watermark (the latest capture time
seen) reaches its end: its result is emitted then. Until the watermark passes
end + grace, a late record still updates the window and its result is emitted again (with a
higher revision); later than that, the record is dropped and counted. Counts are per rule
and class: line crossings in and out, zone entries, and peak zone occupancy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

METRICS = ("in", "out", "entries", "peak")


@dataclass
class Counts:
    crossed_in: int = 0
    crossed_out: int = 0
    entries: int = 0
    peak: int = 0

    def add(self, metric: str, value: int) -> bool:
        """Apply one update; False when it changed nothing (a peak below the current)."""
        if metric == "in":
            self.crossed_in += value
        elif metric == "out":
            self.crossed_out += value
        elif metric == "entries":
            self.entries += value
        elif metric == "peak":
            if value <= self.peak:
                return False
            self.peak = value
        else:
            raise ValueError(f"unknown metric {metric!r}")
        return True


@dataclass(frozen=True)
class WindowResult:
    """One window's counts for one rule and class, as emitted on vae.counts."""

    window_start_us: int
    window_end_us: int
    rule: str
    kind: str  # line or zone
    label: str
    counts: Counts
    revision: int  # 0 when the window closed; +1 for every late update after


Key = tuple[str, str, str]  # rule, kind (line/zone), label


@dataclass
class _Window:
    counts: dict[Key, Counts] = field(default_factory=dict)
    closed: bool = False
    revision: int = -1
    dirty: set[Key] = field(default_factory=set)


def window_start(ts_us: int, size_us: int) -> int:
    """The start of the tumbling window an instant falls in (aligned to the epoch)."""
    return ts_us - ts_us % size_us


class Windows:
    def __init__(self, size_s: float, grace_s: float, keep: int = 60) -> None:
        self.size_us = int(size_s * 1e6)
        self.grace_us = int(grace_s * 1e6)
        if self.size_us <= 0:
            raise ValueError("window size must be positive")
        self.watermark_us: int | None = None
        self.late_dropped = 0
        self.totals: dict[Key, Counts] = {}
        self._open: dict[int, _Window] = {}
        self._recent: deque[WindowResult] = deque(maxlen=keep * 8)
        self._keep = keep

    def add(self, ts_us: int, rule: str, kind: str, label: str, metric: str, value: int) -> bool:
        """Count one update at event time ts_us; False (and counted) when past the grace."""
        start = window_start(ts_us, self.size_us)
        end = start + self.size_us
        if self.watermark_us is not None and self.watermark_us >= end + self.grace_us:
            self.late_dropped += 1
            return False
        window = self._open.setdefault(start, _Window())
        key = (rule, kind, label)
        if window.counts.setdefault(key, Counts()).add(metric, value):
            window.dirty.add(key)
        self.totals.setdefault(key, Counts())
        if metric == "peak":
            self.totals[key].peak = max(self.totals[key].peak, value)
        else:
            self.totals[key].add(metric, value)
        return True

    def advance(self, ts_us: int) -> list[WindowResult]:
        """Move the watermark; the results of windows that closed or changed since."""
        if self.watermark_us is None or ts_us > self.watermark_us:
            self.watermark_us = ts_us
        watermark = self.watermark_us
        results: list[WindowResult] = []
        for start in sorted(self._open):
            window = self._open[start]
            end = start + self.size_us
            if end > watermark:
                continue
            if not window.closed:
                window.closed = True
                keys = sorted(window.counts)
            else:
                keys = sorted(window.dirty)
            window.dirty.clear()
            if keys:
                window.revision += 1
                results.extend(
                    WindowResult(
                        start, end, r, k, lb, _copy(window.counts[(r, k, lb)]), window.revision
                    )
                    for r, k, lb in keys
                )
            if watermark >= end + self.grace_us:
                self._recent.extend(
                    WindowResult(start, end, r, k, lb, _copy(c), window.revision)
                    for (r, k, lb), c in sorted(window.counts.items())
                )
                del self._open[start]
        return results

    def recent(self) -> list[WindowResult]:
        """Windows past their grace, oldest first (a bounded history for the API)."""
        return list(self._recent)

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot (for a changelogged table)."""
        return {
            "size_us": self.size_us,
            "grace_us": self.grace_us,
            "watermark_us": self.watermark_us,
            "late_dropped": self.late_dropped,
            "totals": [[*k, asdict(c)] for k, c in sorted(self.totals.items())],
            "open": [
                [
                    start,
                    w.closed,
                    w.revision,
                    [[*k, asdict(c)] for k, c in sorted(w.counts.items())],
                    [list(k) for k in sorted(w.dirty)],
                ]
                for start, w in sorted(self._open.items())
            ],
            "recent": [
                [
                    r.window_start_us,
                    r.window_end_us,
                    r.rule,
                    r.kind,
                    r.label,
                    asdict(r.counts),
                    r.revision,
                ]
                for r in self._recent
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], keep: int = 60) -> Windows:
        windows = cls(state["size_us"] / 1e6, state["grace_us"] / 1e6, keep)
        windows.size_us, windows.grace_us = state["size_us"], state["grace_us"]
        windows.watermark_us = state["watermark_us"]
        windows.late_dropped = state["late_dropped"]
        windows.totals = {(r, k, lb): Counts(**c) for r, k, lb, c in state["totals"]}
        for start, closed, revision, counts, dirty in state["open"]:
            windows._open[start] = _Window(
                {(r, k, lb): Counts(**c) for r, k, lb, c in counts},
                closed,
                revision,
                {(r, k, lb) for r, k, lb in dirty},
            )
        windows._recent.extend(
            WindowResult(s, e, r, k, lb, Counts(**c), rev)
            for s, e, r, k, lb, c, rev in state["recent"]
        )
        return windows


def _copy(counts: Counts) -> Counts:
    return Counts(counts.crossed_in, counts.crossed_out, counts.entries, counts.peak)
