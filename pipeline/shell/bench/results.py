"""Benchmark figures and what is derived from them: ratios, Markdown tables, the doc section.

Pure (no model, no broker): unit-tested on made-up points.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

LEVELS = ("model", "detect", "pipeline")
LEVEL_TITLES = {
    "model": "raw model (a ready input tensor in, raw output out)",
    "detect": "JPEG bytes in, detections out (decode, letterbox, model, NMS; no Kafka)",
    "pipeline": "the whole worker through the embedded broker (frames topic in, "
    "detections topic out)",
}
SECTION_START = "<!-- bench:inference:start -->"
SECTION_END = "<!-- bench:inference:end -->"


@dataclass(frozen=True)
class Point:
    """One measurement: a backend at a precision, batch size and level."""

    backend: str  # e.g. onnxruntime-cpu
    precision: str
    level: str  # model, detect, pipeline
    batch: int
    images_per_s: float
    latency_ms_p50: float  # per batch (model, detect); per frame, poll to publish (pipeline)
    latency_ms_p90: float
    frames: int  # frames measured
    # Pipeline points: the raw model's images/s at this batch, measured just before and just
    # after this run (their mean), so ratio (b) compares figures taken minutes apart no more.
    baseline_images_per_s: float = 0.0
    # CPU time per frame from the OS's accounting (it barely moves with the machine's load):
    # this process's for model and detect, the worker process's for pipeline.
    cpu_ms_per_frame: float = 0.0
    broker_cpu_ms_per_frame: float = 0.0  # pipeline: the embedded broker's, same machine

    @property
    def key(self) -> tuple[str, str]:
        return (self.backend, self.precision)


@dataclass
class Report:
    """Every point of one run, and where it ran."""

    machine: dict[str, Any]
    command: str
    points: list[Point] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "backend precision" -> why

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "command": self.command,
            "points": [asdict(p) for p in self.points],
            "skipped": self.skipped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        return cls(
            machine=data["machine"],
            command=data["command"],
            points=[Point(**p) for p in data["points"]],
            skipped=dict(data.get("skipped", {})),
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def batch_point(
    backend: str, precision: str, level: str, batch: int, batch_latencies_ms: Sequence[float]
) -> Point:
    """A point from per-batch latencies of batches run one after another."""
    median = statistics.median(batch_latencies_ms)
    return Point(
        backend, precision, level, batch,
        images_per_s=batch * 1000.0 / median if median > 0 else 0.0,
        latency_ms_p50=median,
        latency_ms_p90=percentile(batch_latencies_ms, 90),
        frames=batch * len(batch_latencies_ms),
    )  # fmt: skip


def steady_rate(finish_times_s: Sequence[float], skip: int) -> float:
    """Frames per second over the finish times after the first ``skip`` (warm-up) ones."""
    times = sorted(finish_times_s)[skip:]
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


def _by(points: Iterable[Point], level: str) -> dict[tuple[str, str, int], Point]:
    return {(p.backend, p.precision, p.batch): p for p in points if p.level == level}


def best(points: Iterable[Point], backend: str, precision: str, level: str) -> Point | None:
    """The highest-throughput point of a backend at a precision and level."""
    mine = [p for p in points if (p.backend, p.precision, p.level) == (backend, precision, level)]
    return max(mine, key=lambda p: p.images_per_s, default=None)


@dataclass(frozen=True)
class BatchingGain:
    """Ratio (a): best batched throughput against batch-1 FP32, at the raw model level."""

    backend: str
    baseline: Point  # batch 1, fp32
    best_fp16: Point | None
    best_any: Point

    @property
    def fp16_ratio(self) -> float | None:
        if self.best_fp16 is None or not self.baseline.images_per_s:
            return None
        return self.best_fp16.images_per_s / self.baseline.images_per_s

    @property
    def any_ratio(self) -> float:
        return self.best_any.images_per_s / self.baseline.images_per_s


def batching_gains(points: Sequence[Point]) -> list[BatchingGain]:
    model = _by(points, "model")
    gains = []
    for backend in sorted({p.backend for p in points}):
        baseline = model.get((backend, "fp32", 1))
        if baseline is None:
            continue
        mine = [p for p in model.values() if p.backend == backend]
        fp16 = [p for p in mine if p.precision == "fp16"]
        gains.append(
            BatchingGain(
                backend,
                baseline,
                max(fp16, key=lambda p: p.images_per_s, default=None),
                max(mine, key=lambda p: p.images_per_s),
            )
        )
    return gains


@dataclass(frozen=True)
class PipelineEfficiency:
    """Ratio (b): pipeline-through-Kafka against raw model throughput, same batch size."""

    backend: str
    precision: str
    batch: int
    pipeline: Point
    model: Point

    @property
    def raw_images_per_s(self) -> float:
        return self.pipeline.baseline_images_per_s or self.model.images_per_s

    @property
    def ratio(self) -> float:
        if not self.raw_images_per_s:
            return 0.0
        return self.pipeline.images_per_s / self.raw_images_per_s


def pipeline_efficiency(points: Sequence[Point]) -> list[PipelineEfficiency]:
    model = _by(points, "model")
    result = []
    for key, point in sorted(_by(points, "pipeline").items()):
        if key in model:
            result.append(PipelineEfficiency(key[0], key[1], key[2], point, model[key]))
    return result


def cpu_markdown(points: Sequence[Point]) -> str:
    """Where the CPU goes per frame, and the ceiling it puts on ratio (b) on a CPU box."""
    model = _by(points, "model")
    detect = _by(points, "detect")
    lines = [
        "| backend | precision | batch | raw model | JPEG to detections | worker through "
        "Kafka | embedded broker | raw / (worker + broker) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = 0
    for key, pipeline in sorted(_by(points, "pipeline").items()):
        if not pipeline.cpu_ms_per_frame or key not in model:
            continue
        raw = model[key].cpu_ms_per_frame
        spent = pipeline.cpu_ms_per_frame + pipeline.broker_cpu_ms_per_frame
        det = detect.get(key)
        det_cell = f"{det.cpu_ms_per_frame:.1f}" if det else "–"
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {raw:.1f} | {det_cell} | "
            f"{pipeline.cpu_ms_per_frame:.1f} | {pipeline.broker_cpu_ms_per_frame:.1f} | "
            f"{raw / spent:.2f} |"
        )
        rows += 1
    if not rows:
        return ""
    lines += [
        "",
        "CPU milliseconds per frame (all threads). Where every process shares the same cores "
        "and they are saturated, ratio (b) cannot exceed the last column.",
    ]
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def level_table(points: Sequence[Point], level: str) -> str:
    """Images/s (and p50 latency) per batch size, one row per backend and precision."""
    mine = [p for p in points if p.level == level]
    if not mine:
        return ""
    batches = sorted({p.batch for p in mine})
    rows = sorted({p.key for p in mine})
    cells = {(p.key, p.batch): p for p in mine}
    caption = {
        "model": "median time per batch",
        "detect": "median time per batch from its decode starting to its detections, the "
        "next batches queued behind it",
        "pipeline": "median time per frame from the worker polling it to publishing its "
        "detections, with the whole backlog queued (every stage queue full: a worst case, "
        "not the latency of a real-time stream)",
    }[level]
    lines = [
        f"| backend | precision | {' | '.join(f'batch {b}' for b in batches)} |",
        "|---|---|" + "---:|" * len(batches),
    ]
    for key in rows:
        values = []
        for b in batches:
            point = cells.get((key, b))
            values.append(
                f"{_fmt(point.images_per_s)} img/s<br>{point.latency_ms_p50:.1f} ms"
                if point
                else "–"
            )
        lines.append(f"| {key[0]} | {key[1]} | {' | '.join(values)} |")
    lines.append("")
    lines.append(f"Each cell: throughput, and {caption}.")
    return "\n".join(lines)


def ratios_markdown(points: Sequence[Point]) -> str:
    lines = [
        "| backend | batch-1 FP32 | best FP16 | (a) best FP16 / batch-1 FP32 | best of any "
        "precision | best / batch-1 FP32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for gain in batching_gains(points):
        fp16 = gain.best_fp16
        fp16_cell = f"{_fmt(fp16.images_per_s)} img/s (batch {fp16.batch})" if fp16 else "–"
        ratio = f"{gain.fp16_ratio:.2f}x" if gain.fp16_ratio is not None else "–"
        lines.append(
            f"| {gain.backend} | {_fmt(gain.baseline.images_per_s)} img/s | {fp16_cell} | "
            f"{ratio} | {_fmt(gain.best_any.images_per_s)} img/s ({gain.best_any.precision}, "
            f"batch {gain.best_any.batch}) | {gain.any_ratio:.2f}x |"
        )
    efficiency = pipeline_efficiency(points)
    if efficiency:
        lines += [
            "",
            "| backend | precision | batch | pipeline through Kafka | raw model, measured "
            "around it | (b) pipeline / raw |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for e in efficiency:
            lines.append(
                f"| {e.backend} | {e.precision} | {e.batch} | "
                f"{_fmt(e.pipeline.images_per_s)} img/s | {_fmt(e.raw_images_per_s)} img/s | "
                f"{e.ratio:.2f} |"
            )
    return "\n".join(lines)


def markdown(report: Report, plot: str = "") -> str:
    """The generated part of docs/benchmarks.md's Inference section."""
    machine = report.machine
    lines = [
        SECTION_START,
        f"Measured {machine.get('date', '?')} on {machine.get('cpu', '?')} "
        f"({machine.get('cores', '?')} cores usable), GPU: {machine.get('gpu', 'none')}; "
        f"onnxruntime {machine.get('onnxruntime', '?')}, torch {machine.get('torch', 'absent')}.",
        "",
        f"Command: `{report.command}`",
        "",
        "### Ratios from this run",
        "",
        ratios_markdown(report.points),
    ]
    cpu = cpu_markdown(report.points)
    if cpu:
        lines += ["", "### Where the CPU goes", "", cpu]
    for level in LEVELS:
        table = level_table(report.points, level)
        if table:
            title = LEVEL_TITLES[level]
            lines += ["", f"### {title[0].upper()}{title[1:]}", "", table]
    if report.skipped:
        lines += ["", "### Not run here", ""]
        lines += [f"- {what}: {why}" for what, why in sorted(report.skipped.items())]
    if plot:
        lines += ["", f"![Throughput against batch size]({plot})"]
    lines.append(SECTION_END)
    return "\n".join(lines)


def replace_section(
    document: str, generated: str, start: str = SECTION_START, end: str = SECTION_END
) -> str:
    """Put ``generated`` between the markers of ``document`` (appended if it has none)."""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: generated, document, count=1)
    return document.rstrip("\n") + "\n\n" + generated + "\n"
