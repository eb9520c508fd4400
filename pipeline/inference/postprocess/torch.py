"""YOLOX candidate selection on the model's device, so only the few candidates reach the host.

A 416x416 YOLOX output is 3549 x 85 floats (1.2 MB) per image; at GPU rates, copying it
all to the host and scoring it in NumPy would make the CPU the bottleneck. Here the score
product, the threshold and the box decode run where the output already is, and the host
receives K rows (tens per image). NMS then runs on the host exactly as on the CPU path
(``yolox.detections_from_candidates``), so both paths share one NMS implementation.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from pipeline.inference.postprocess.yolox import Candidates, anchor_grid, check_anchors

_GRIDS: dict[tuple[tuple[int, int], str], tuple[torch.Tensor, torch.Tensor]] = {}
_LOCAL = threading.local()


def _own_stream(device: torch.device) -> AbstractContextManager[Any]:
    """A stream of the calling thread's own on CUDA: work on the legacy default stream would
    serialise with the preprocessing and model streams of the other stages."""
    if device.type != "cuda":
        return nullcontext()
    stream = getattr(_LOCAL, "stream", None)
    if stream is None:
        stream = _LOCAL.stream = torch.cuda.Stream(device=device)
    return torch.cuda.stream(stream)


def _grid_on(size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    key = (size, str(device))
    if key not in _GRIDS:
        grid, strides = anchor_grid(size)
        _GRIDS[key] = (torch.from_numpy(grid).to(device), torch.from_numpy(strides).to(device))
    return _GRIDS[key]


@torch.inference_mode()
def select_candidates_torch(
    raw: torch.Tensor, size: tuple[int, int], conf_threshold: float
) -> Candidates:
    """Torch twin of ``yolox.select_candidates`` (same arithmetic, float32), results on host."""
    check_anchors(int(raw.shape[1]), size)
    with _own_stream(raw.device):
        return _select(raw.float(), size, conf_threshold)


def _select(raw: torch.Tensor, size: tuple[int, int], conf_threshold: float) -> Candidates:
    # As on the host: only anchors whose objectness clears the threshold can score above it.
    image_a, anchor_a = torch.nonzero(raw[..., 4] > conf_threshold, as_tuple=True)
    rows = raw[image_a, anchor_a]
    scores = rows[:, 5:] * rows[:, 4:5]
    row_idx, class_idx = torch.nonzero(scores > conf_threshold, as_tuple=True)
    image_idx, anchor_idx = image_a[row_idx], anchor_a[row_idx]
    grid, strides = _grid_on(size, raw.device)
    regression = rows[row_idx, 0:4]
    centre = (regression[:, 0:2] + grid[anchor_idx]) * strides[anchor_idx]
    half = torch.exp(regression[:, 2:4]) * strides[anchor_idx] / 2.0
    boxes = torch.cat((centre - half, centre + half), dim=1)
    picked = scores[row_idx, class_idx]
    # One transfer for everything (a sync point: the caller wants the host arrays now).
    packed = torch.cat(
        (
            torch.stack((image_idx, class_idx), dim=1).to(torch.float64),
            picked[:, None].to(torch.float64),
            boxes.to(torch.float64),
        ),
        dim=1,
    ).cpu()
    host = packed.numpy()
    return Candidates(
        host[:, 0].astype(np.intp),
        host[:, 1].astype(np.intp),
        host[:, 2].astype(np.float32),
        np.ascontiguousarray(host[:, 3:7], dtype=np.float32),
    )
