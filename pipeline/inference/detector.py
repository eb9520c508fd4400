"""JPEG bytes in, Detections out, in steps a pipeline can overlap.

``prepare`` (decode + letterbox: on CPU threads, or on the GPU for a torch CUDA backend),
``submit``/``collect`` (the backend; a GPU backend runs batch k while batch k+1 is copied
in), ``finish`` (score threshold and box decode, vectorised, where the output is; then
class-aware NMS on the host). A worker runs them on different threads so batch k+1 is
decoded while batch k infers and batch k-1 is published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.inference.backends.base import Backend, InferenceHandle
from pipeline.inference.backends.buckets import bucket_for
from pipeline.inference.detections import Detections
from pipeline.inference.postprocess.yolox import detections_from_candidates, select_candidates
from pipeline.inference.preprocess.batch import CpuPreparer, PreparedBatch, Preparer

log = logging.getLogger(__name__)

__all__ = ["BatchResult", "Detector", "PreparedBatch", "choose_preparer"]


@dataclass
class BatchResult:
    """Detections for each prepared row, and the batch's stage times."""

    detections: list[Detections]
    inference_ms: float
    postprocess_ms: float


@dataclass
class Submitted:
    """A prepared batch in the backend."""

    prepared: PreparedBatch
    handle: InferenceHandle | None  # None: no frame of the batch could be decoded


def choose_preparer(
    backend: Backend,
    pool: Executor | None = None,
    gpu_preprocess: bool = True,
    cpu_resize: str = "pillow",
    decode_margin: float = 0.0,
) -> Preparer:
    """GPU decode and letterbox for torch on CUDA (when allowed); the CPU otherwise."""
    if gpu_preprocess and backend.device == "cuda" and backend.name.startswith("torch"):
        from pipeline.inference.preprocess.torch import TorchPreparer, nvjpeg_available

        nvjpeg, why = nvjpeg_available()
        log.info(
            "preprocessing on the GPU: decode %s, letterbox with torch",
            "with nvJPEG" if nvjpeg else f"on the CPU ({why})",
        )
        import torch

        dtype = getattr(backend, "dtype", torch.float32)  # the torch backend's model dtype
        return TorchPreparer(backend.input_size, "cuda", dtype, nvjpeg=nvjpeg, pool=pool)
    return CpuPreparer(backend.input_size, pool, cpu_resize, decode_margin)


class Detector:
    """A backend plus the model's pre- and post-processing."""

    def __init__(
        self,
        backend: Backend,
        *,
        conf_threshold: float = 0.3,
        iou_threshold: float = 0.45,
        pool: Executor | None = None,
        preparer: Preparer | None = None,
    ) -> None:
        self.backend = backend
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.preparer = preparer or CpuPreparer(backend.input_size, pool)

    @property
    def model_label(self) -> str:
        return f"{self.backend.name}/{self.backend.precision}"

    def prepare(self, images: Sequence[bytes]) -> PreparedBatch:
        """Decode and letterbox every image into one (n, 3, H, W) tensor."""
        return self.preparer.prepare(images)

    def padding(self, prepared: PreparedBatch) -> int:
        """Rows the backend adds to reach its next batch bucket (0 for dynamic shapes)."""
        rows = len(prepared.rows)
        return bucket_for(rows, self.backend.buckets) - rows if rows else 0

    def submit(self, prepared: PreparedBatch) -> Submitted:
        """Start the model on a prepared batch (returns at once on a GPU backend)."""
        if not prepared.rows:
            return Submitted(prepared, None)
        return Submitted(prepared, self.backend.submit(prepared.tensor, prepared.ready))

    def collect(self, submitted: Submitted) -> tuple[Any, float]:
        """Wait for a submitted batch: its raw output and the milliseconds it took."""
        if submitted.handle is None:
            return np.zeros((0, 0, 85), dtype=np.float32), 0.0
        raw = submitted.handle.result()
        return raw, submitted.handle.elapsed_ms

    def infer(self, prepared: PreparedBatch) -> tuple[Any, float]:
        """Raw model output for the prepared rows, and the milliseconds it took."""
        return self.collect(self.submit(prepared))

    def finish(self, prepared: PreparedBatch, raw: Any, inference_ms: float) -> BatchResult:
        """Boxes in each frame's own pixels."""
        start = time.perf_counter()
        detections: list[Detections] = []
        if prepared.rows:
            size = self.backend.input_size
            if isinstance(raw, np.ndarray):
                candidates = select_candidates(raw, size, self.conf_threshold)
            else:  # a torch tensor on the backend's device
                from pipeline.inference.postprocess.torch import select_candidates_torch

                candidates = select_candidates_torch(raw, size, self.conf_threshold)
            detections = detections_from_candidates(
                candidates, len(prepared.rows), prepared.ratios, self.iou_threshold, prepared.sizes
            )
        return BatchResult(detections, inference_ms, (time.perf_counter() - start) * 1e3)

    def detect(self, images: Sequence[bytes]) -> list[Detections | None]:
        """All steps at once; None for an image that could not be decoded."""
        prepared = self.prepare(images)
        raw, inference_ms = self.infer(prepared)
        result = self.finish(prepared, raw, inference_ms)
        out: list[Detections | None] = [None] * len(images)
        for row, detections in zip(prepared.rows, result.detections, strict=True):
            out[row] = detections
        return out
