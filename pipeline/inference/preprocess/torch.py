"""JPEG decode and letterbox on the GPU, so the CPU is not what limits a GPU worker.

Decode: nvJPEG through torchvision's ``decode_jpeg(..., device="cuda")``, a whole batch
in one call (torchvision is imported lazily: there is no CPU build of it for the pinned
torch, and a GPU worker without it decodes on the CPU and still letterboxes on the GPU).
Letterbox: frames of one size are resized together with ``interpolate(mode="bilinear",
antialias=True)``, the torch resize designed to match Pillow's antialiased bilinear (the
CPU path, which reproduces MODELS.md's reference detections), rounded to 8 bits like
Pillow's output, placed top-left on a 114-grey canvas, in the model's dtype.

GPU work runs on this preparer's own stream, so the next batch is decoded while the
current one is in the model; the batch carries a CUDA event the model's stream waits on.
On the CPU the same code runs without streams (how the tests compare it with Pillow).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Executor
from contextlib import nullcontext

import numpy as np
import torch
from torch.nn import functional

from pipeline.inference.preprocess.batch import Outcome, PreparedBatch, assemble
from pipeline.inference.preprocess.cpu import (
    PAD_VALUE,
    UndecodableImage,
    check_jpeg_size,
    decode_jpeg_bgr,
)
from pipeline.inference.preprocess.cpu import letterbox_ratio as ratio_for

log = logging.getLogger(__name__)


def nvjpeg_available() -> tuple[bool, str]:
    """Whether torchvision's GPU JPEG decoder can be used here, and why not."""
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    try:
        importlib.import_module("torchvision.io")
    except Exception as exc:  # missing, or built for another torch (fails at import)
        return False, f"torchvision unusable: {exc}"
    return True, "torchvision.io.decode_jpeg on CUDA"


def letterbox_batch(
    images: Sequence[torch.Tensor], size: tuple[int, int], dtype: torch.dtype
) -> tuple[torch.Tensor, list[float]]:
    """(3, h, w) uint8 BGR images on one device -> (n, 3, H, W) letterboxed, and the ratios."""
    height, width = size
    device = images[0].device if images else torch.device("cpu")
    out = torch.full((len(images), 3, height, width), float(PAD_VALUE), dtype=dtype, device=device)
    ratios = [0.0] * len(images)
    by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        by_shape[(int(image.shape[1]), int(image.shape[2]))].append(index)
    for (h, w), indices in by_shape.items():
        ratio = ratio_for(h, w, size)
        new_h, new_w = int(h * ratio), int(w * ratio)
        group = torch.stack([images[i] for i in indices])
        if (new_h, new_w) == (h, w):
            resized = group.to(dtype)
        else:
            resized = functional.interpolate(
                group.float(), size=(new_h, new_w), mode="bilinear", antialias=True,
                align_corners=False,
            )  # fmt: skip
            resized = resized.round_().clamp_(0, 255).to(dtype)  # 8-bit, as Pillow's output
        if len(indices) == len(images):
            out[:, :, :new_h, :new_w] = resized
        else:
            rows = torch.tensor(indices, device=device)
            out[rows, :, :new_h, :new_w] = resized
        for i in indices:
            ratios[i] = ratio
    return out, ratios


def decode_nvjpeg(
    images: Sequence[bytes], device: torch.device
) -> list[torch.Tensor | UndecodableImage]:
    """Batched GPU decode to (3, h, w) uint8 BGR; a frame that fails is reported alone."""
    from torchvision.io import ImageReadMode, decode_jpeg

    refused: list[UndecodableImage | None] = []
    for data in images:
        try:
            check_jpeg_size(data)
            refused.append(None)
        except UndecodableImage as exc:
            refused.append(exc)
    encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in images]
    if not any(refused):
        try:
            decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
            return [image.flip(0) for image in decoded]  # RGB -> BGR, the model's order
        except RuntimeError:
            pass  # one bad frame fails the batched call: find it frame by frame
    results: list[torch.Tensor | UndecodableImage] = []
    for tensor, refusal in zip(encoded, refused, strict=True):
        if refusal is not None:
            results.append(refusal)
            continue
        try:
            results.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=device).flip(0))
        except RuntimeError as exc:
            results.append(UndecodableImage(f"cannot decode JPEG: {exc}"))
    return results


class TorchPreparer:
    """Decode (nvJPEG, or CPU) and letterbox (torch) into a tensor on the model's device."""

    def __init__(
        self,
        input_size: tuple[int, int],
        device: str,
        dtype: torch.dtype,
        *,
        nvjpeg: bool,
        pool: Executor | None = None,
    ) -> None:
        self.input_size = input_size
        self.dtype = dtype
        self._device = torch.device(device)
        self._nvjpeg = nvjpeg
        self._pool = pool
        self._stream = torch.cuda.Stream() if self._device.type == "cuda" else None

    def _decode_cpu(self, images: Sequence[bytes]) -> list[torch.Tensor | UndecodableImage]:
        def one(data: bytes) -> torch.Tensor | UndecodableImage:
            try:
                array = decode_jpeg_bgr(data)
            except UndecodableImage as exc:
                return exc
            host = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
            # Pool threads start on the default stream: copy on this preparer's stream.
            with torch.cuda.stream(self._stream) if self._stream is not None else nullcontext():
                return host.to(self._device, non_blocking=True)

        if self._pool is not None and len(images) > 1:
            return list(self._pool.map(one, images))
        return [one(data) for data in images]

    @torch.inference_mode()
    def prepare(self, images: Sequence[bytes]) -> PreparedBatch:
        count = max(1, len(images))
        start = time.perf_counter()
        ready = None
        on_stream = torch.cuda.stream(self._stream) if self._stream is not None else nullcontext()
        with on_stream:
            decoded = (
                decode_nvjpeg(images, self._device) if self._nvjpeg else self._decode_cpu(images)
            )
            decoded_at = time.perf_counter()
            good = [d for d in decoded if isinstance(d, torch.Tensor)]
            tensor, ratios = letterbox_batch(good, self.input_size, self.dtype)
            if self._stream is not None:
                ready = torch.cuda.Event()
                ready.record(self._stream)
        done = time.perf_counter()
        # Per-frame times are the batch's host time shared out (the GPU works on batches).
        decode_ms = (decoded_at - start) * 1e3 / count
        letterbox_ms = (done - decoded_at) * 1e3 / count
        outcomes: list[Outcome | Exception] = []
        ratio_iter = iter(ratios)
        for item in decoded:
            if isinstance(item, torch.Tensor):
                height, width = int(item.shape[1]), int(item.shape[2])
                outcomes.append((next(ratio_iter), height, width, decode_ms, letterbox_ms))
            else:
                outcomes.append(item)
        return assemble(tensor, outcomes, ready, compacted=True)
