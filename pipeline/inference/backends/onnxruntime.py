"""ONNX Runtime: the CPU backend everywhere, CUDA/TensorRT providers with onnxruntime-gpu."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from pipeline.inference.backends.base import BackendUnavailable
from pipeline.inference.onnx_graph import make_batch_dynamic

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class OnnxRuntimeBackend:
    """One InferenceSession over the model with its batch dimension made dynamic."""

    def __init__(
        self,
        model_path: Path,
        input_size: tuple[int, int],
        max_batch: int,
        *,
        threads: int = 0,
        device: str = "cpu",
    ) -> None:
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable(
                    "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
                )
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or usable_cores()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = make_batch_dynamic(onnx.load(str(model_path)))
        self._session = ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=providers
        )
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        self.name = f"onnxruntime-{device}"
        self.precision = "fp32"
        self.input_size = input_size
        self.max_batch = max_batch
        self.threads = options.intra_op_num_threads
        log.info("onnxruntime session on %s, %d intra-op threads", providers[0], self.threads)

    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        outputs = self._session.run([self._output], {self._input: batch})
        return np.asarray(outputs[0], dtype=np.float32)

    def close(self) -> None:
        del self._session
