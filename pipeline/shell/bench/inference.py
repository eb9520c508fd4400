"""`vae bench inference` (`make bench-inference`): throughput per backend, precision, batch.

For every backend that loads here (the ``auto`` candidates plus torch on the CPU), each
precision and each batch size: the raw model, JPEG bytes to detections, and the whole
worker through the embedded broker. Writes a JSON of every figure, prints the tables,
and optionally rewrites the Inference section of docs/benchmarks.md and a plot.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.config import Settings
from pipeline.inference.backends.base import Backend, BackendUnavailable
from pipeline.inference.backends.factory import AUTO_ORDER, Candidate, load_candidate
from pipeline.inference.detector import Detector, choose_preparer
from pipeline.inference.preprocess.batch import CpuPreparer
from pipeline.runtime import usable_cores
from pipeline.shell.bench.levels import batches_for, run_detect_level, run_model_level
from pipeline.shell.bench.options import BenchInferenceOptions
from pipeline.shell.bench.plot import plot_throughput
from pipeline.shell.bench.results import (
    Report,
    best,
    markdown,
    ratios_markdown,
    replace_section,
)
from pipeline.shell.bench.through_kafka import PipelineRunFailed, run_pipeline_level

log = logging.getLogger(__name__)
console = Console(highlight=False)

ALL_CANDIDATES = (*AUTO_ORDER, Candidate("torch", "cpu"))
# Left out of `--backends all` (name them to run them): minutes per point, nothing learnt.
NOT_BY_DEFAULT = {
    (Candidate("torch", "cpu"), "fp16"): "not run by default: torch has no fast FP16 kernels "
    "on the CPU (3.6 img/s at batch 8 here); ask with --backends torch-cpu --precisions fp16",
}
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)
SAMPLE_FRAMES = 48


@dataclass(frozen=True)
class Plan:
    candidates: tuple[Candidate, ...]
    precisions: tuple[str, ...]
    batches: tuple[int, ...]
    levels: tuple[str, ...]
    seconds: float
    pipeline_seconds: float
    everything: bool  # --backends all


def _plan(options: BenchInferenceOptions) -> Plan:
    by_label = {c.label: c for c in ALL_CANDIDATES}
    wanted = [b.strip() for b in options.backends.split(",") if b.strip()]
    candidates: tuple[Candidate, ...]
    if wanted == ["all"]:
        candidates = ALL_CANDIDATES
    else:
        unknown = [w for w in wanted if w not in by_label]
        if unknown:
            raise SystemExit(f"unknown backend(s) {unknown}; choose from {sorted(by_label)}")
        candidates = tuple(by_label[w] for w in wanted)
    levels = tuple(v.strip() for v in options.levels.split(",") if v.strip())
    if set(levels) - {"model", "detect", "pipeline"}:
        raise SystemExit(f"unknown level in {levels}")
    return Plan(
        candidates=candidates,
        precisions=tuple(p.strip() for p in options.precisions.split(",") if p.strip()),
        batches=tuple(sorted(int(b) for b in options.batches.split(","))),
        levels=levels,
        seconds=options.seconds,
        pipeline_seconds=options.pipeline_seconds,
        everything=wanted == ["all"],
    )


def machine_facts() -> dict[str, Any]:
    """Where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    with_cpuinfo = Path("/proc/cpuinfo")
    if with_cpuinfo.is_file():
        for line in with_cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    facts: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cores": usable_cores(),
        "python": platform.python_version(),
        "gpu": "none",
    }
    import onnxruntime

    facts["onnxruntime"] = onnxruntime.__version__
    try:
        import torch

        facts["torch"] = torch.__version__
        if torch.cuda.is_available():
            facts["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        facts["torch"] = "absent"
    return facts


def sample_jpegs(source: str, count: int) -> list[tuple[bytes, int, int]]:
    """``count`` frames spread over the clip, as (JPEG, width, height)."""
    from connectors import samples
    from connectors.sources.video import VideoSource

    frames = VideoSource(source or samples.locate(samples.DEFAULT_CLIP), quality=90).load()
    step = max(1, len(frames) // count)
    return [(f.jpeg, f.width, f.height) for f in frames[::step][:count]]


def _load(candidate: Candidate, settings: Settings, precision: str, max_batch: int) -> Backend:
    return load_candidate(candidate, settings.model, max_batch, precision)


def run(options: BenchInferenceOptions, settings: Settings) -> int:
    """Entry point of `vae bench inference`."""
    if options.from_json:
        saved = Report.from_json(json.loads(Path(options.from_json).read_text()))
        _write(saved, replace(options, json=options.from_json))
        return 0
    plan = _plan(options)
    report = Report(machine_facts(), "vae " + " ".join(sys.argv[1:]))
    console.print(
        f"bench inference on {report.machine['cpu']} ({report.machine['cores']} cores), "
        f"GPU: {report.machine['gpu']}"
    )
    jpegs = sample_jpegs(options.media, SAMPLE_FRAMES)
    letterboxed = CpuPreparer((416, 416)).prepare([j[0] for j in jpegs[:8]]).tensor
    max_batch = max(plan.batches)
    broker = None
    if "pipeline" in plan.levels:
        from pipeline.kafka.embedded import EmbeddedBroker

        broker = EmbeddedBroker(log_file=Path(options.json).parent / "broker.log")
        Path(options.json).parent.mkdir(parents=True, exist_ok=True)
        broker.start()
    pool = ThreadPoolExecutor(max(1, settings.worker.decode_threads), thread_name_prefix="decode")
    points_per_combo = len(plan.batches) * len(plan.levels)
    try:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(
                "loading", total=len(plan.candidates) * len(plan.precisions) * points_per_combo
            )
            for candidate in plan.candidates:
                for precision in plan.precisions:
                    what = f"{candidate.label} {precision}"
                    if plan.everything and (candidate, precision) in NOT_BY_DEFAULT:
                        report.skipped[what] = NOT_BY_DEFAULT[(candidate, precision)]
                        progress.advance(task, points_per_combo)
                        continue
                    progress.update(task, description=f"{what}: loading")
                    try:
                        backend = _load(candidate, settings, precision, max_batch)
                    except BackendUnavailable as exc:
                        report.skipped[what] = str(exc)
                        progress.console.print(f"[yellow]skip[/] {what}: {exc}")
                        progress.advance(task, points_per_combo)
                        continue
                    _run_combo(
                        plan, report, backend, candidate, precision, jpegs, letterboxed, pool,
                        settings, broker, Path(options.json).parent, progress, task,
                    )  # fmt: skip
    finally:
        pool.shutdown(wait=False)
        if broker is not None:
            broker.stop()
    _write(report, options)
    return 0


def _run_combo(
    plan: Plan,
    report: Report,
    backend: Backend,
    candidate: Candidate,
    precision: str,
    jpegs: list[tuple[bytes, int, int]],
    letterboxed: Any,
    pool: ThreadPoolExecutor,
    settings: Settings,
    broker: Any,
    log_dir: Path,
    progress: Progress,
    task: Any,
) -> None:
    what = f"{backend.name} {precision}"
    rates: dict[int, float] = {}
    try:
        for batch in plan.batches:
            progress.update(task, description=f"{what}: model, batch {batch}")
            point = run_model_level(backend, letterboxed, batch, plan.seconds)
            rates[batch] = point.images_per_s
            if "model" in plan.levels:
                report.points.append(point)
                progress.advance(task)
        if "detect" in plan.levels:
            preparer = choose_preparer(
                backend, pool, settings.model.gpu_preprocess, settings.model.cpu_resize
            )
            detector = Detector(
                backend, conf_threshold=settings.model.conf_threshold,
                iou_threshold=settings.model.nms_iou, preparer=preparer,
            )  # fmt: skip
            frames = [j[0] for j in jpegs]
            for batch in plan.batches:
                progress.update(task, description=f"{what}: detect, batch {batch}")
                batches = batches_for(rates[batch], batch, plan.seconds)
                report.points.append(run_detect_level(detector, frames, batch, batches))
                progress.advance(task)
        if "pipeline" in plan.levels:
            for batch in plan.batches:
                progress.update(task, description=f"{what}: through Kafka, batch {batch}")
                _pipeline_point(
                    plan, report, backend, candidate, precision, batch, rates[batch], jpegs,
                    letterboxed, settings, broker, log_dir, progress,
                )  # fmt: skip
                progress.advance(task)
    finally:
        backend.close()


def _pipeline_point(
    plan: Plan,
    report: Report,
    backend: Backend,
    candidate: Candidate,
    precision: str,
    batch: int,
    rate: float,
    jpegs: list[tuple[bytes, int, int]],
    letterboxed: Any,
    settings: Settings,
    broker: Any,
    log_dir: Path,
    progress: Progress,
) -> None:
    """One worker run, bracketed by raw-model runs (the machine's speed drifts)."""
    what = f"{backend.name} {precision}"
    frames_count = max(8 * batch, int(rate * plan.pipeline_seconds))
    before = run_model_level(backend, letterboxed, batch, plan.seconds / 2).images_per_s
    try:
        point = run_pipeline_level(
            bootstrap=broker.bootstrap, broker_pid=broker.pid, backend=candidate.kind,
            device=candidate.device,
            precision=precision, batch=batch, frames=frames_count, jpegs=jpegs,
            model=settings.model, log_dir=log_dir,
            timeout_s=60 + 5 * frames_count / max(rate, 1.0),
        )  # fmt: skip
    except PipelineRunFailed as exc:
        report.skipped[f"{what} pipeline batch {batch}"] = str(exc)
        progress.console.print(f"[red]failed[/] {what} pipeline batch {batch}: {exc}")
        return
    after = run_model_level(backend, letterboxed, batch, plan.seconds / 2).images_per_s
    report.points.append(replace(point, baseline_images_per_s=(before + after) / 2))


def _write(report: Report, options: BenchInferenceOptions) -> None:
    json_path = Path(options.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    console.print(f"figures: {json_path}")
    _print_summary(report)
    plot_ref = ""
    if options.plot:
        title = f"YOLOX-Nano 416 on {report.machine['cpu']}, GPU: {report.machine['gpu']}"
        path = plot_throughput(report.points, Path(options.plot), title)
        console.print(f"plot: {path}")
        if options.markdown:
            plot_ref = Path(
                os.path.relpath(
                    Path(options.plot).resolve(), Path(options.markdown).resolve().parent
                )
            ).as_posix()
    if options.markdown:
        doc = Path(options.markdown)
        text = doc.read_text() if doc.is_file() else "# Benchmarks\n\n## Inference\n"
        doc.write_text(replace_section(text, markdown(report, plot_ref)))
        console.print(f"updated: {doc}")


def _print_summary(report: Report) -> None:
    console.print(ratios_markdown(report.points))
    for key in sorted({p.key for p in report.points}):
        top = best(report.points, key[0], key[1], "pipeline")
        if top is not None:  # streams are only claimed for what went through Kafka
            console.print(
                f"{key[0]} {key[1]}: best through Kafka {top.images_per_s:,.1f} frames/s at "
                f"batch {top.batch} = {int(top.images_per_s)} one-fps streams per worker"
            )
    for what, why in report.skipped.items():
        console.print(f"not run: {what}: {why}")
