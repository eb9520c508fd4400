"""JPEG bytes in, Detections out, in three steps a pipeline can overlap.

``prepare`` (decode + letterbox, parallel in a thread pool: libjpeg-turbo and OpenCV
release the GIL), ``infer`` (the backend), ``finish`` (vectorised box decode and NMS).
A worker runs them on different threads so batch k+1 is decoded while batch k infers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pipeline.inference.backends.base import Backend
from pipeline.inference.detections import Detections
from pipeline.inference.preprocess import (
    UndecodableImage,
    decode_jpeg_bgr,
    letterbox,
    to_chw_float,
)
from pipeline.inference.yolox import postprocess


@dataclass
class PreparedBatch:
    """Model input for a batch, with what is needed to map boxes back to each frame.

    Frames that failed to decode are left out of ``tensor``; ``errors`` says why, by the
    frame's index in the original list, and ``rows`` maps tensor rows to those indices.
    """

    tensor: npt.NDArray[np.float32]
    ratios: npt.NDArray[np.float32]
    sizes: npt.NDArray[np.int32]  # (n, 2) height, width
    rows: list[int]
    decode_ms: list[float]
    preprocess_ms: list[float]
    errors: dict[int, str] = field(default_factory=dict)


@dataclass
class BatchResult:
    """Detections for each prepared row, and the batch's stage times."""

    detections: list[Detections]
    inference_ms: float
    postprocess_ms: float


class Detector:
    """A backend plus the model's pre- and post-processing."""

    def __init__(
        self,
        backend: Backend,
        *,
        conf_threshold: float = 0.3,
        iou_threshold: float = 0.45,
        pool: Executor | None = None,
    ) -> None:
        self.backend = backend
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self._pool = pool

    @property
    def model_label(self) -> str:
        return f"{self.backend.name}/{self.backend.precision}"

    def _prepare_one(
        self, data: bytes, slot: npt.NDArray[np.float32]
    ) -> tuple[float, int, int, float, float]:
        start = time.perf_counter()
        image = decode_jpeg_bgr(data)
        decoded = time.perf_counter()
        canvas, ratio = letterbox(image, self.backend.input_size)
        to_chw_float(canvas, slot)
        done = time.perf_counter()
        return (
            ratio,
            image.shape[0],
            image.shape[1],
            (decoded - start) * 1e3,
            (done - decoded) * 1e3,
        )

    def prepare(self, images: Sequence[bytes]) -> PreparedBatch:
        """Decode and letterbox every image into one (n, 3, H, W) tensor."""
        height, width = self.backend.input_size
        tensor = np.empty((len(images), 3, height, width), dtype=np.float32)
        if self._pool is not None and len(images) > 1:
            futures = [
                self._pool.submit(self._prepare_one, data, tensor[i])
                for i, data in enumerate(images)
            ]
            outcomes: list[tuple[float, int, int, float, float] | Exception] = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except UndecodableImage as exc:
                    outcomes.append(exc)
        else:
            outcomes = []
            for i, data in enumerate(images):
                try:
                    outcomes.append(self._prepare_one(data, tensor[i]))
                except UndecodableImage as exc:
                    outcomes.append(exc)
        rows = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
        errors = {i: str(o) for i, o in enumerate(outcomes) if isinstance(o, Exception)}
        good = [o for o in outcomes if not isinstance(o, Exception)]
        if errors:
            tensor = tensor[rows]
        return PreparedBatch(
            tensor=tensor,
            ratios=np.asarray([g[0] for g in good], dtype=np.float32),
            sizes=np.asarray([(g[1], g[2]) for g in good], dtype=np.int32).reshape(-1, 2),
            rows=rows,
            decode_ms=[g[3] for g in good],
            preprocess_ms=[g[4] for g in good],
            errors=errors,
        )

    def infer(self, prepared: PreparedBatch) -> tuple[npt.NDArray[np.float32], float]:
        """Raw model output for the prepared rows, and the milliseconds it took."""
        if not prepared.rows:
            return np.zeros((0, 0, 85), dtype=np.float32), 0.0
        start = time.perf_counter()
        raw = self.backend.infer(prepared.tensor)
        return raw, (time.perf_counter() - start) * 1e3

    def finish(
        self, prepared: PreparedBatch, raw: npt.NDArray[np.float32], inference_ms: float
    ) -> BatchResult:
        """Boxes in each frame's own pixels."""
        start = time.perf_counter()
        detections = (
            postprocess(
                raw,
                prepared.ratios,
                self.backend.input_size,
                self.conf_threshold,
                self.iou_threshold,
                prepared.sizes,
            )
            if prepared.rows
            else []
        )
        return BatchResult(detections, inference_ms, (time.perf_counter() - start) * 1e3)

    def detect(self, images: Sequence[bytes]) -> list[Detections | None]:
        """All three steps at once; None for an image that could not be decoded."""
        prepared = self.prepare(images)
        raw, inference_ms = self.infer(prepared)
        result = self.finish(prepared, raw, inference_ms)
        out: list[Detections | None] = [None] * len(images)
        for row, detections in zip(prepared.rows, result.detections, strict=True):
            out[row] = detections
        return out
