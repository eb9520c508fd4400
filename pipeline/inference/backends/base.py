"""What every inference backend provides: a float32 NCHW batch in, raw model output out."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (package missing, no device); the message says why."""


class Backend(Protocol):
    """A loaded model on a device."""

    name: str  # e.g. "onnxruntime-cpu"
    precision: str  # "fp32" or "fp16"
    input_size: tuple[int, int]  # (height, width)
    max_batch: int

    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run the model on (N, 3, H, W) float32 BGR 0..255; return (N, anchors, 85)."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...
