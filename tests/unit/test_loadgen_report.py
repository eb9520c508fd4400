"""Merging process results: counters summed, histograms added, every frame accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadgen.plot import plot_report
from loadgen.report import merge
from loadgen.stats import LIVE_SECONDS, ProcessStats


def _process(sent: int, acked: int, refused: int, lost: int, latency_ms: float) -> ProcessStats:
    stats = ProcessStats(connected=10, sent=sent, acked=acked, lost=lost)
    stats.rejected["overloaded"] = refused
    for i in range(acked):
        stats.observe("gateway", latency_ms, i % 3)
        stats.second(i % 3).acked += 1
    for i in range(sent):
        stats.second(i % 3).sent += 1
    return stats


def test_merge_sums_counts_and_adds_histograms(tmp_path: Path) -> None:
    a = _process(sent=100, acked=98, refused=1, lost=1, latency_ms=2.0)
    b = _process(sent=50, acked=50, refused=0, lost=0, latency_ms=30.0)
    report = merge({"streams": 20, "fps": 1, "duration": 3}, [a.result(), b.result()])
    assert report.counts["sent"] == 150
    assert report.counts["acked"] == 148
    assert report.counts["rejected"] == 1 and report.counts["lost"] == 1
    assert report.consistent()
    assert report.error_rate() == pytest.approx(2 / 150)
    gateway = report.latencies["gateway"]
    assert gateway.count == 148
    assert gateway.percentile_ms(50) == pytest.approx(2.0, rel=0.01)
    assert gateway.percentile_ms(99) == pytest.approx(30.0, rel=0.01)
    assert [row["t"] for row in report.series] == [0, 1, 2]
    assert sum(row["sent"] for row in report.series) == 150
    assert sum(row["acked"] for row in report.series) == 148

    path = tmp_path / "report.json"
    report.write_json(path)
    body = json.loads(path.read_text())
    assert body["counts"]["sent"] == 150 and body["consistent"] is True
    assert body["latency_ms"]["gateway"]["count"] == 148
    assert body["rejected_by_reason"] == {"overloaded": 1}

    png = tmp_path / "report.png"
    plot_report(report, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_undetected_frames_count_as_errors_only_when_subscribed() -> None:
    stats = ProcessStats(sent=10, acked=10, detected=7, undetected=3)
    assert merge({"subscribe": False}, [stats.result()]).error_rate() == 0.0
    assert merge({"subscribe": True}, [stats.result()]).error_rate() == pytest.approx(0.3)


def test_counts_that_do_not_add_up_are_flagged() -> None:
    stats = ProcessStats(sent=10, acked=8)  # two frames neither acked, refused nor lost
    assert not merge({}, [stats.result()]).consistent()


def test_a_long_run_keeps_old_seconds_encoded_and_reports_them_the_same() -> None:
    """An hour at one sample per second must not hold 3,600 live histograms (~22 KB each);
    packed seconds, and one that gets a late sample after packing, report as if live."""
    stats = ProcessStats()
    for second in range(3 * LIVE_SECONDS):
        for k in range(5):
            stats.observe("gateway", 1.0 + second + k / 10, second)
    stats.observe("gateway", 500.0, 0)  # a late ack for the first second, long packed
    assert len(stats.live_seconds) <= LIVE_SECONDS
    assert sum(1 for s in stats.seconds.values() if s.live) <= LIVE_SECONDS
    rows = merge({}, [stats.result()]).series
    assert len(rows) == 3 * LIVE_SECONDS
    assert rows[0]["gateway"]["p99"] == pytest.approx(500.0, rel=0.01)  # the late sample
    assert rows[0]["gateway"]["p50"] == pytest.approx(1.2, rel=0.01)
    last = rows[-1]["gateway"]
    assert last["p50"] == pytest.approx(3 * LIVE_SECONDS + 0.2, rel=0.01)
