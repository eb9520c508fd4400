"""The two in-process levels: the raw model, and JPEG bytes to detections without Kafka.

Both run real frames of the sample clip. The model level times one batch after another
on a ready input tensor (host memory for ONNX Runtime and TensorRT, so their copies are
included; device memory for torch on CUDA, so only the model is). The detect level runs
the worker's own three stages (prepare on a thread pool, overlapped infer, finish) over a
stream of batches, so decode and letterbox of batch k+1 overlap inference of batch k
exactly as in a worker, and measures frames per second through all of it.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.inference.backends.base import Backend
from pipeline.inference.detector import Detector, Submitted
from pipeline.inference.preprocess.batch import PreparedBatch
from pipeline.runtime import process_cpu_seconds
from pipeline.shell.bench.results import Point, batch_point
from pipeline.worker.stages import STOP, OverlappedStage, Stage

WARMUP_BATCHES = 2
MIN_BATCHES = 3


def model_input(backend: Backend, letterboxed: npt.NDArray[np.float32], batch: int) -> Any:
    """``batch`` rows of real letterboxed frames, where the backend takes its input."""
    rows = np.resize(letterboxed, (batch, *letterboxed.shape[1:])).astype(np.float32)
    if backend.device == "cuda" and backend.name.startswith("torch"):
        import torch

        return torch.from_numpy(rows).to("cuda")
    return rows


def run_model_level(
    backend: Backend, letterboxed: npt.NDArray[np.float32], batch: int, seconds: float
) -> Point:
    """Per-batch latency of the model, batches one after another."""
    tensor = model_input(backend, letterboxed, batch)
    for _ in range(WARMUP_BATCHES):
        backend.submit(tensor).result()
    latencies: list[float] = []
    cpu_start = process_cpu_seconds()
    deadline = time.perf_counter() + seconds
    while len(latencies) < MIN_BATCHES or time.perf_counter() < deadline:
        start = time.perf_counter()
        backend.submit(tensor).result()
        latencies.append((time.perf_counter() - start) * 1e3)
    cpu_ms = (process_cpu_seconds() - cpu_start) * 1e3 / (batch * len(latencies))
    point = batch_point(backend.name, backend.precision, "model", batch, latencies)
    return replace(point, cpu_ms_per_frame=cpu_ms)


def batches_for(rate: float, batch: int, seconds: float) -> int:
    """How many batches make about ``seconds`` at ``rate`` images/s (at least a few)."""
    return max(MIN_BATCHES + 1, math.ceil(rate * seconds / batch))


def run_detect_level(
    detector: Detector, jpegs: Sequence[bytes], batch: int, batches: int, depth: int = 2
) -> Point:
    """Frames per second through prepare -> infer (overlapped) -> finish, on threads."""
    inbox: queue.Queue[Any] = queue.Queue(depth)
    to_infer: queue.Queue[Any] = queue.Queue(depth)
    to_finish: queue.Queue[Any] = queue.Queue(depth)
    finished: list[tuple[float, float]] = []  # (started, done) per batch
    failures: list[str] = []

    def prepare(frames: list[bytes]) -> tuple[float, PreparedBatch]:
        return time.perf_counter(), detector.prepare(frames)

    def submit(item: tuple[float, PreparedBatch]) -> tuple[float, Submitted]:
        return item[0], detector.submit(item[1])

    def collect(item: tuple[float, Submitted]) -> tuple[float, PreparedBatch, Any, float]:
        raw, elapsed = detector.collect(item[1])
        return item[0], item[1].prepared, raw, elapsed

    def finish(item: tuple[float, PreparedBatch, Any, float]) -> None:
        detector.finish(item[1], item[2], item[3])
        finished.append((item[0], time.perf_counter()))

    stages: list[threading.Thread] = [
        Stage("bench-prepare", prepare, inbox, to_infer, failures.append),
        OverlappedStage(
            "bench-infer",
            submit,
            collect,
            to_infer,
            to_finish,
            failures.append,
            depth=detector.backend.max_in_flight,
        ),
        Stage("bench-finish", finish, to_finish, None, failures.append),
    ]
    cpu_start = process_cpu_seconds()
    for stage in stages:
        stage.start()
    for index in range(batches):
        start = index * batch
        frames = [jpegs[(start + i) % len(jpegs)] for i in range(batch)]
        inbox.put(frames)
    inbox.put(STOP)
    for stage in stages:
        stage.join()
    cpu_ms = (process_cpu_seconds() - cpu_start) * 1e3 / (batch * batches)
    if failures:
        raise RuntimeError(f"detect level failed: {failures[0]}")
    done = [d for _, d in finished]
    # Throughput once the pipeline is full: from the first batch out to the last.
    elapsed = done[-1] - done[0]
    rate = batch * (len(done) - 1) / elapsed if elapsed > 0 else 0.0
    latencies = [(d - s) * 1e3 for s, d in finished]
    point = batch_point(
        detector.backend.name, detector.backend.precision, "detect", batch, latencies
    )
    return Point(
        point.backend, point.precision, "detect", batch, rate,
        point.latency_ms_p50, point.latency_ms_p90, batch * len(done), cpu_ms_per_frame=cpu_ms,
    )  # fmt: skip
