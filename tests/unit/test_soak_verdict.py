"""The soak's verdict: slopes of memory and lag over the second half of the load, and the
section it writes into docs/reliability.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.shell.bench.options import BenchSoakOptions
from pipeline.shell.bench.soak import END_MARK, START_MARK, _publish, markdown, verdict


def _report(worker_mb_per_min: float = 0.0, lag_per_min: float = 0.0) -> dict[str, Any]:
    samples = []
    for i in range(121):  # 10 min, every 5 s
        t = i * 5.0
        warm = min(t, 60.0) / 60.0  # memory rises in the first minute, then as given
        samples.append(
            {
                "t": t,
                "rss_mb": {
                    "broker": 20 + t,  # keeps every record: grows by design
                    "gateway": 100 + 10 * warm + (i % 3) * 0.5,  # noise, no trend
                    "worker": 400 + 50 * warm + worker_mb_per_min * t / 60,
                    "analytics": 200.0,
                    "loadgen": 150.0,
                },
                "lag": {"worker": 8 + i % 4, "analytics": 30 + int(lag_per_min * t / 60)},
            }
        )
    return {
        "config": {
            "duration": 600.0,
            "max_growth": 1.0,
            "streams": 500,
            "fps": 1.0,
            "source": "the sample photo (dog.jpg)",
            "width": 128,
            "durable": False,
            "keyframe_s": 60.0,
            "max_frame_age_ms": 10000,
            "started": "2026-12-06 12:00 UTC",
            "machine": "vm (x86_64, 2 cores)",
            "command": "vae bench soak --duration 600",
        },
        "samples": samples,
        "counters": {
            "vae_gateway_bytes_received_total": 600 * 500 * 4700.0,
            "vae_worker_frames_skipped_total{reason=stale}": 0.0,
        },
        "loadgen": {"exit_code": 0, "counts": {"sent": 300_000, "acked": 300_000}},
    }


def test_flat_services_and_a_bounded_lag_pass_whatever_the_warm_up_did() -> None:
    v = verdict(_report())
    assert v["services_ok"] and v["lag_ok"], v
    assert abs(v["rss_slope_mb_per_min"]["worker"]) < 0.1  # the warm-up is not fitted
    assert v["rss_slope_mb_per_min"]["broker"] > 50  # reported, not judged
    assert v["broker_ingest_mb_per_min"] > 0


def test_a_service_growing_after_warm_up_fails_with_its_slope() -> None:
    v = verdict(_report(worker_mb_per_min=3.0))
    assert not v["services_ok"] and v["lag_ok"]
    assert abs(v["rss_slope_mb_per_min"]["worker"] - 3.0) < 0.05
    assert "GROWING: worker +3.00 MB/min" in v["summary"]


def test_a_lag_that_keeps_growing_fails() -> None:
    v = verdict(_report(lag_per_min=1200.0))
    assert v["services_ok"] and not v["lag_ok"]
    assert "LAG GROWING: analytics" in v["summary"]


def test_the_section_is_rewritten_between_its_marks(tmp_path: Path) -> None:
    report = _report()
    report["verdict"] = verdict(report)
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# Reliability\n\n{START_MARK}\nold run\n{END_MARK}\n\nafter\n")
    _publish(report, BenchSoakOptions(markdown=str(doc)))
    text = doc.read_text()
    assert "old run" not in text and text.endswith(f"{END_MARK}\n\nafter\n")
    assert markdown(report) in text
    assert "| worker | 400 |" in text and "services flat" in text
    # a second section in the same file, rewritten by its name, leaves the first alone
    doc.write_text(text + "<!-- soak-500:start -->\n<!-- soak-500:end -->\n")
    _publish(report, BenchSoakOptions(markdown=str(doc), section="soak-500"))
    assert doc.read_text().count(markdown(report)) == 2


def test_short_runs_need_a_trend_that_adds_up_to_more_than_noise() -> None:
    """A 4 MB allocator step in the last minutes of a short run is not a leak."""
    report = _report()
    for s in report["samples"]:
        if s["t"] > 500:
            s["rss_mb"]["worker"] += 4
    v = verdict(report)
    assert v["rss_slope_mb_per_min"]["worker"] > 1.0 and v["services_ok"], v
