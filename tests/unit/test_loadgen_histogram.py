"""Percentiles from histograms merged across processes match NumPy on the raw samples."""

from __future__ import annotations

import numpy as np
import pytest

from loadgen.histogram import PERCENTILES, LatencyHistogram


def _samples(kind: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if kind == "lognormal":  # latency-like: a body around a few ms and a long tail
        return rng.lognormal(mean=1.5, sigma=0.9, size=60_000)
    # bimodal: fast acks, plus a slow mode (a broker stall) two orders of magnitude away
    return np.concatenate([rng.normal(3.0, 0.4, 50_000).clip(0.05), rng.normal(400, 50, 900)])


@pytest.mark.parametrize("kind", ["lognormal", "bimodal"])
def test_merged_percentiles_are_within_one_percent_of_numpy(kind: str) -> None:
    samples = _samples(kind)
    merged = LatencyHistogram()
    # Three "processes" each record a share, then send their encoded histogram to the parent.
    for share in np.array_split(samples, 3):
        part = LatencyHistogram()
        for value in share:
            part.record_ms(float(value))
        merged.add(LatencyHistogram.decode(part.encode()))
    assert merged.count == len(samples)
    for q in (*PERCENTILES, 99.99):
        # HdrHistogram's percentile is the smallest v with at least q% of samples <= v.
        exact = float(np.percentile(samples, q, method="inverted_cdf"))
        assert merged.percentile_ms(q) == pytest.approx(exact, rel=0.01), q
    assert merged.max_ms() == pytest.approx(float(samples.max()), rel=0.01)


def test_averaging_per_process_percentiles_would_be_wrong() -> None:
    """Why histograms are merged: one slow process's p99 is not the fleet's p99."""
    fast, slow = LatencyHistogram(), LatencyHistogram()
    for _ in range(9_900):
        fast.record_ms(2.0)
    for _ in range(100):
        slow.record_ms(500.0)
    averaged = (fast.percentile_ms(99) + slow.percentile_ms(99)) / 2
    merged = LatencyHistogram.decode(fast.encode())
    merged.add(slow)
    assert merged.percentile_ms(99) == pytest.approx(2.0, rel=0.01)
    assert merged.percentile_ms(99.5) == pytest.approx(500.0, rel=0.01)
    assert averaged == pytest.approx(251.0, rel=0.01)


def test_empty_and_out_of_range_values() -> None:
    h = LatencyHistogram()
    assert h.summary()["p99"] == 0.0 and h.count == 0
    h.record_ms(-1.0)  # clock skew: clamped to the lowest trackable value, not dropped
    h.record_ms(10_000_000.0)  # clamped to two minutes
    assert h.count == 2
    assert h.max_ms() == pytest.approx(120_000.0, rel=0.01)
    assert LatencyHistogram.decode(b"").count == 0
