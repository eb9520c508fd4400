"""Latency histograms that merge exactly across processes (HdrHistogram, in microseconds).

Percentiles are HdrHistogram's: the smallest recorded value v such that at least q% of
samples are <= v (NumPy's ``method="inverted_cdf"``), within the histogram's precision.
Histograms from several processes are added bucket by bucket, never averaged.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 120_000_000  # two minutes: anything slower is a lost frame, not a latency
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class LatencyHistogram:
    """Milliseconds in, milliseconds out; microsecond resolution, ``digits`` significant."""

    def __init__(self, digits: int = 3) -> None:
        self.digits = digits
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, digits)

    def record_ms(self, value_ms: float) -> None:
        """Record one latency (clamped into the trackable range)."""
        us = int(value_ms * 1000.0 + 0.5)
        self._h.record_value(min(max(us, LOWEST_US), HIGHEST_US))

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile (0-100) in ms; 0.0 for an empty histogram."""
        if self.count == 0:
            return 0.0
        return float(self._h.get_value_at_percentile(q)) / 1000.0

    def max_ms(self) -> float:
        return float(self._h.get_max_value()) / 1000.0 if self.count else 0.0

    def mean_ms(self) -> float:
        return float(self._h.get_mean_value()) / 1000.0 if self.count else 0.0

    def summary(self) -> dict[str, float]:
        """count, p50/p90/p99/p99.9, max and mean (ms) for reports."""
        out: dict[str, float] = {"count": float(self.count)}
        for q in PERCENTILES:
            out[f"p{q:g}"] = round(self.percentile_ms(q), 3)
        out["max"] = round(self.max_ms(), 3)
        out["mean"] = round(self.mean_ms(), 3)
        return out

    def add(self, other: LatencyHistogram) -> None:
        """Merge another histogram into this one (bucket counts are summed)."""
        self._h.add(other._h)

    def encode(self) -> bytes:
        """Compact, compressed form for sending between processes."""
        encoded: bytes = self._h.encode()
        return encoded

    @classmethod
    def decode(cls, blob: bytes, digits: int = 3) -> LatencyHistogram:
        histogram = cls(digits)
        if blob:
            histogram._h.decode_and_add(blob)
        return histogram

    def reset(self) -> None:
        self._h.reset()
