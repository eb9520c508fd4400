"""What every inference backend provides: a batch in, the raw model output out.

Inference is split into ``submit`` (start the batch; on a GPU, enqueue copies and kernels
and return at once) and ``InferenceHandle.result`` (wait for it). A caller that submits
batch k+1 before collecting batch k overlaps the copy of one with the inference of the
other (the worker's infer stage does this). CPU backends simply finish inside ``submit``.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (package missing, no device); the message says why."""


class InferenceHandle(Protocol):
    """A submitted batch."""

    def result(self) -> Any:
        """Block until done; the (rows, anchors, 85) output: a NumPy array on the host, or a
        torch tensor on the backend's device (GPU post-processing then runs there)."""
        ...

    @property
    def elapsed_ms(self) -> float:
        """Time the batch spent in the backend (device time where the device can tell)."""
        ...


class Done:
    """The handle of a batch that finished inside ``submit`` (synchronous backends)."""

    __slots__ = ("_elapsed_ms", "_output")

    def __init__(self, output: Any, elapsed_ms: float) -> None:
        self._output = output
        self._elapsed_ms = elapsed_ms

    def result(self) -> Any:
        return self._output

    @property
    def elapsed_ms(self) -> float:
        return self._elapsed_ms


class Backend(Protocol):
    """A loaded model on a device."""

    name: str  # e.g. "onnxruntime-cpu", "torch-cuda", "tensorrt"
    precision: str  # "fp32" or "fp16"
    device: str  # "cpu" or "cuda"
    input_size: tuple[int, int]  # (height, width)
    max_batch: int
    # Batch sizes the engine runs; a batch is padded up to the next one. A backend with
    # fully dynamic shapes lists every size from 1 to max_batch (no padding).
    buckets: tuple[int, ...]
    # Batches that can be submitted before the oldest is collected: 2 for a double-buffered
    # GPU backend, 1 for one that finishes inside ``submit`` (overlap would only delay it).
    max_in_flight: int

    def submit(self, batch: Any, ready: Any = None) -> InferenceHandle:
        """Start inference on (N, 3, H, W) BGR 0..255: a float32 NumPy array, or (torch
        backends) a tensor already on the device, complete once the CUDA event ``ready``
        has passed. N may be below a bucket: the backend pads it."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


def infer_host(backend: Backend, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Run one batch to completion and return the output as a float32 host array."""
    output = backend.submit(batch).result()
    if isinstance(output, np.ndarray):
        return np.asarray(output, dtype=np.float32)
    host: npt.NDArray[np.float32] = output.float().cpu().numpy()
    return host


def timed(function: Any, *args: Any) -> tuple[Any, float]:
    """``function(*args)`` and the milliseconds it took."""
    start = time.perf_counter()
    value = function(*args)
    return value, (time.perf_counter() - start) * 1e3
