"""ONNX Runtime: the CPU backend everywhere; CUDA and TensorRT providers with onnxruntime-gpu.

The CPU provider gets one intra-op thread per core this process may use (taskset/cgroup
affinity), so a worker pinned to N cores runs N threads. FP16 runs the model converted by
``onnx_graph.to_fp16`` (float32 I/O): on GPU providers that is the fast path; on the CPU
it runs but is slower than FP32 (no FP16 arithmetic there), which the benchmark shows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from pipeline.inference.backends.base import BackendUnavailable, Done, timed
from pipeline.inference.backends.onnx_graph import make_batch_dynamic, to_fp16
from pipeline.runtime import usable_cores

log = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _provider_list(
    device: str, input_name: str, max_batch: int, input_size: tuple[int, int], cache_dir: str
) -> list[Any]:
    """Providers in order of preference; ONNX Runtime falls back along the list."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise BackendUnavailable(
            "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu in place of "
            "onnxruntime)"
        )
    providers: list[Any] = []
    if "TensorrtExecutionProvider" in available:
        h, w = input_size
        providers.append(
            (
                "TensorrtExecutionProvider",
                {
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": cache_dir,
                    "trt_profile_min_shapes": f"{input_name}:1x3x{h}x{w}",
                    "trt_profile_opt_shapes": f"{input_name}:{max_batch}x3x{h}x{w}",
                    "trt_profile_max_shapes": f"{input_name}:{max_batch}x3x{h}x{w}",
                },
            )
        )
    providers += ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return providers


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
        precision: str = "fp32",
        cache_dir: str = "",
    ) -> None:
        model = make_batch_dynamic(onnx.load(str(model_path)))
        if precision == "fp16":
            model = to_fp16(model)
        input_name = model.graph.input[0].name
        if device != "cpu" and cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
        providers = _provider_list(device, input_name, max_batch, input_size, cache_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or usable_cores()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spinning: the worker decodes JPEGs on the
        # same cores between batches, and spinning threads took twice the time from them
        # (measured: batch 8 through decode+model, 17 vs 9.5 img/s on a busy 2-core box).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=providers
        )
        used = self._session.get_providers()
        if device != "cpu" and used[0] not in GPU_PROVIDERS:
            raise BackendUnavailable(
                f"onnxruntime could not start a GPU provider (got {used}); no usable GPU?"
            )
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        kind = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda"}
        self.name = f"onnxruntime-{kind.get(used[0], 'cpu')}"
        self.precision = precision
        self.device = "cpu" if device == "cpu" else "cuda"
        self.input_size = input_size
        self.max_batch = max_batch
        self.buckets = tuple(range(1, max_batch + 1))  # dynamic shapes: no padding
        self.max_in_flight = 1  # run() returns when the batch is done
        self.threads = options.intra_op_num_threads
        log.info(
            "onnxruntime session on %s (%s), %d intra-op threads",
            used[0],
            precision,
            self.threads,
        )

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        outputs = self._session.run([self._output], {self._input: batch})
        return np.asarray(outputs[0], dtype=np.float32)

    def submit(self, batch: Any, ready: Any = None) -> Done:
        output, elapsed_ms = timed(self._run, np.ascontiguousarray(batch, dtype=np.float32))
        return Done(output, elapsed_ms)

    def close(self) -> None:
        del self._session
