"""Turning a batch of JPEGs into model input: the CPU preparer, and what every preparer returns.

The CPU preparer decodes (libjpeg-turbo) and letterboxes (Pillow) each frame in a thread
pool, in parallel (both release the GIL), straight into its row of one float32 NCHW
tensor. The GPU preparer (``preprocess.torch``) returns the same PreparedBatch with the
tensor on the device.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pipeline.inference.preprocess.cpu import (
    UndecodableImage,
    decode_jpeg_bgr,
    decode_jpeg_bgr_for,
    letterbox,
    to_chw_float,
)


@dataclass
class PreparedBatch:
    """Model input for a batch, with what is needed to map boxes back to each frame.

    Frames that failed to decode are left out of ``tensor``; ``errors`` says why, by the
    frame's index in the original list, and ``rows`` maps tensor rows to those indices.
    ``tensor`` is a float32 NumPy array, or a torch tensor on the model's device whose
    producing stream recorded ``ready`` (a CUDA event) once it was complete.
    """

    tensor: Any
    ratios: npt.NDArray[np.float32]
    sizes: npt.NDArray[np.int32]  # (n, 2) height, width
    rows: list[int]
    decode_ms: list[float]
    preprocess_ms: list[float]
    errors: dict[int, str] = field(default_factory=dict)
    ready: Any = None


class Preparer(Protocol):
    """JPEG bytes in, PreparedBatch out."""

    def prepare(self, images: Sequence[bytes]) -> PreparedBatch: ...


Outcome = tuple[float, int, int, float, float]  # ratio, height, width, decode ms, letterbox ms


def assemble(
    tensor: Any,
    outcomes: Sequence[Outcome | Exception],
    ready: Any = None,
    *,
    compacted: bool = False,
) -> PreparedBatch:
    """A PreparedBatch from per-frame outcomes (an exception marks an undecodable frame).

    ``tensor`` has a row per frame, or only the good frames' rows when ``compacted``.
    """
    rows = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
    errors = {i: str(o) for i, o in enumerate(outcomes) if isinstance(o, Exception)}
    good = [o for o in outcomes if not isinstance(o, Exception)]
    if errors and not compacted:
        tensor = tensor[rows]
    return PreparedBatch(
        tensor=tensor,
        ratios=np.asarray([g[0] for g in good], dtype=np.float32),
        sizes=np.asarray([(g[1], g[2]) for g in good], dtype=np.int32).reshape(-1, 2),
        rows=rows,
        decode_ms=[g[3] for g in good],
        preprocess_ms=[g[4] for g in good],
        errors=errors,
        ready=ready,
    )


class CpuPreparer:
    """simplejpeg + Pillow letterbox per frame, in parallel on a thread pool."""

    def __init__(
        self,
        input_size: tuple[int, int],
        pool: Executor | None = None,
        resize: str = "pillow",
        decode_margin: float = 0.0,
    ) -> None:
        self.input_size = input_size
        self._pool = pool
        self._resize = resize
        self._margin = decode_margin  # 0: full decode (see preprocess.cpu.dct_scale_for)

    def _prepare_one(self, data: bytes, slot: npt.NDArray[np.float32]) -> Outcome:
        start = time.perf_counter()
        if self._margin > 0:
            image, height, width = decode_jpeg_bgr_for(data, self.input_size, self._margin)
        else:
            image = decode_jpeg_bgr(data)
            height, width = image.shape[:2]
        decoded = time.perf_counter()
        canvas, ratio = letterbox(image, self.input_size, self._resize)
        # Boxes come back in the full frame's pixels, whatever scale it was decoded at.
        ratio *= image.shape[1] / width
        to_chw_float(canvas, slot)
        done = time.perf_counter()
        return (ratio, height, width, (decoded - start) * 1e3, (done - decoded) * 1e3)

    def prepare(self, images: Sequence[bytes]) -> PreparedBatch:
        """Decode and letterbox every image into one (n, 3, H, W) float32 tensor."""
        height, width = self.input_size
        tensor = np.empty((len(images), 3, height, width), dtype=np.float32)
        outcomes: list[Outcome | Exception] = []
        if self._pool is not None and len(images) > 1:
            futures = [
                self._pool.submit(self._prepare_one, data, tensor[i])
                for i, data in enumerate(images)
            ]
            for future in futures:
                try:
                    outcomes.append(future.result())
                except UndecodableImage as exc:
                    outcomes.append(exc)
        else:
            for i, data in enumerate(images):
                try:
                    outcomes.append(self._prepare_one(data, tensor[i]))
                except UndecodableImage as exc:
                    outcomes.append(exc)
        return assemble(tensor, outcomes)
