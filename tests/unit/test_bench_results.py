"""Benchmark arithmetic: percentiles, steady rates, the two ratios, the doc section."""

from __future__ import annotations

import pytest

from pipeline.shell.bench.results import (
    SECTION_END,
    SECTION_START,
    Point,
    Report,
    batch_point,
    batching_gains,
    markdown,
    percentile,
    pipeline_efficiency,
    replace_section,
    steady_rate,
)


def point(backend: str, precision: str, level: str, batch: int, rate: float) -> Point:
    return Point(backend, precision, level, batch, rate, 1.0, 2.0, batch * 10)


POINTS = [
    point("gpu", "fp32", "model", 1, 1000),
    point("gpu", "fp32", "model", 8, 2500),
    point("gpu", "fp16", "model", 8, 4000),
    point("gpu", "fp16", "model", 64, 3600),
    point("gpu", "fp16", "pipeline", 8, 3500),
    point("cpu", "fp32", "model", 1, 40),
    point("cpu", "fp32", "model", 8, 60),
    point("cpu", "fp32", "pipeline", 8, 51),
]


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 90) == 5
    assert percentile([], 50) == 0.0


def test_batch_point_uses_the_median_batch_time() -> None:
    p = batch_point("b", "fp32", "model", 8, [100.0, 80.0, 400.0])  # one slow outlier
    assert p.latency_ms_p50 == 100.0
    assert p.images_per_s == pytest.approx(80.0)
    assert p.frames == 24


def test_steady_rate_skips_warm_up() -> None:
    # 5 slow warm-up frames, then one frame every 10 ms.
    times = [0.0, 1.0, 2.0, 3.0, 4.0] + [5.0 + 0.01 * i for i in range(101)]
    assert steady_rate(times, skip=5) == pytest.approx(100.0)
    assert steady_rate([1.0], skip=0) == 0.0


def test_batching_gain_is_best_fp16_over_batch1_fp32() -> None:
    gains = {g.backend: g for g in batching_gains(POINTS)}
    assert gains["gpu"].fp16_ratio == pytest.approx(4.0)
    assert gains["gpu"].best_fp16 is not None and gains["gpu"].best_fp16.batch == 8
    assert gains["cpu"].fp16_ratio is None  # no fp16 measured there
    assert gains["cpu"].any_ratio == pytest.approx(1.5)


def test_pipeline_efficiency_compares_the_same_batch() -> None:
    ratios = {(e.backend, e.batch): e.ratio for e in pipeline_efficiency(POINTS)}
    assert ratios == {("cpu", 8): pytest.approx(0.85), ("gpu", 8): pytest.approx(0.875)}


def test_section_is_replaced_between_markers_only() -> None:
    report = Report({"date": "2026-01-01", "cpu": "x", "cores": 2}, "vae bench inference", POINTS)
    generated = markdown(report, plot="img/plot.png")
    assert generated.startswith(SECTION_START) and generated.endswith(SECTION_END)
    assert "| gpu | 1,000 img/s | 4,000 img/s (batch 8) | 4.00x |" in generated
    assert "![Throughput against batch size](img/plot.png)" in generated
    document = (
        f"# B\n\n## Inference\n\nprose\n\n{SECTION_START}\nold\n{SECTION_END}\n\n## Gateway\n"
    )
    updated = replace_section(document, generated)
    assert "old" not in updated and "prose" in updated and updated.endswith("## Gateway\n")
    assert replace_section("# B\n", generated).endswith(SECTION_END + "\n")


def test_report_round_trips_through_json() -> None:
    report = Report({"cpu": "x"}, "cmd", POINTS, {"tensorrt fp16": "not installed"})
    assert Report.from_json(report.to_json()) == report


def test_efficiency_prefers_the_raw_rate_measured_around_the_pipeline_run() -> None:
    from dataclasses import replace

    drifted = [*POINTS[:-1], replace(POINTS[-1], baseline_images_per_s=51.0)]
    cpu = next(e for e in pipeline_efficiency(drifted) if e.backend == "cpu")
    assert cpu.ratio == pytest.approx(1.0) and cpu.raw_images_per_s == 51.0


def test_cpu_table_gives_the_ceiling_of_ratio_b() -> None:
    from dataclasses import replace

    from pipeline.shell.bench.results import cpu_markdown

    points = [
        replace(point("cpu", "fp32", "model", 8, 60), cpu_ms_per_frame=31.0),
        replace(point("cpu", "fp32", "detect", 8, 50), cpu_ms_per_frame=40.0),
        replace(
            point("cpu", "fp32", "pipeline", 8, 40),
            cpu_ms_per_frame=41.0,
            broker_cpu_ms_per_frame=7.0,
        ),
    ]
    assert "| cpu | fp32 | 8 | 31.0 | 40.0 | 41.0 | 7.0 | 0.65 |" in cpu_markdown(points)
    assert cpu_markdown(POINTS) == ""  # no CPU figures measured: no table
