"""TensorRT (the `gpu` extra: tensorrt + pycuda): a cached engine, double-buffered I/O.

The engine is built from the ONNX file with its batch made dynamic and one optimisation
profile for batches 1..max_batch. FP16 follows TensorRT 11, where networks are always
strongly typed (the FP16 builder flag is gone): the ONNX graph itself is converted to
FP16 with float32 I/O (``onnx_graph.to_fp16``) before parsing. Built engines are cached
on disk (``engine_cache``), keyed by model sha256, TensorRT version, GPU name, precision
and profile.

Two slots, each with its own CUDA stream, execution context, page-locked host buffers
and device buffers: ``submit`` enqueues host->device copy, inference and device->host
copy on one slot's stream and returns; batch k+1 is then copied in on the other stream
while batch k still runs. The caller collects results in submission order, at most two
in flight (the worker's infer stage does exactly that).

Not exercised on the development machine (no GPU, no TensorRT there): see README.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from pipeline.inference.backends.base import BackendUnavailable
from pipeline.inference.backends.engine_cache import (
    default_cache_dir,
    engine_file_name,
    load_or_build,
)
from pipeline.inference.backends.onnx_graph import make_batch_dynamic, to_fp16
from pipeline.inference.model_files import sha256_of

try:
    import pycuda.driver as cuda
    import tensorrt as trt
except ImportError as exc:  # the factory turns this into a reason in its log line
    missing = [m for m in ("tensorrt", "pycuda") if importlib.util.find_spec(m) is None]
    raise BackendUnavailable(
        f"{' and '.join(missing) or exc.name} not installed (or not loadable: {exc}); "
        "pip install 'video-analytics-engine[gpu]'"
    ) from exc

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 1 << 30


def _build_engine(
    onnx_bytes: bytes, input_name: str, input_size: tuple[int, int], max_batch: int
) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None and int(trt.__version__.split(".")[0]) < 11:
        flags |= 1 << int(strongly_typed)  # TensorRT 10: ask for what 11 always does
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailable(f"TensorRT cannot parse the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    height, width = input_size
    profile = builder.create_optimization_profile()
    profile.set_shape(
        input_name, (1, 3, height, width), (max_batch, 3, height, width),
        (max_batch, 3, height, width),
    )  # fmt: skip
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable("TensorRT could not build an engine (see its log above)")
    return bytes(serialized)


@dataclass
class _Slot:
    stream: Any
    context: Any  # IExecutionContext
    host_in: npt.NDArray[np.float32]  # page-locked
    host_out: npt.NDArray[np.float32]  # page-locked
    device_in: Any
    device_out: Any
    start: Any
    done: Any
    in_flight: bool = False


class TensorRTHandle:
    """A batch enqueued on one slot's stream."""

    def __init__(self, backend: TensorRTBackend, slot: _Slot, rows: int) -> None:
        self._backend = backend
        self._slot = slot
        self._rows = rows
        self._output: npt.NDArray[np.float32] | None = None
        self._elapsed_ms = 0.0

    def result(self) -> npt.NDArray[np.float32]:
        if self._output is None:
            with self._backend.current():
                self._slot.done.synchronize()
                self._elapsed_ms = float(self._slot.done.time_since(self._slot.start))
            # Copied out: the slot's page-locked buffer is reused two batches later.
            self._output = self._slot.host_out[: self._rows].copy()
            self._slot.in_flight = False
        return self._output

    @property
    def elapsed_ms(self) -> float:
        self.result()
        return self._elapsed_ms


class TensorRTBackend:
    """YOLOX as a TensorRT engine on the first CUDA device."""

    def __init__(
        self,
        model_path: Path,
        input_size: tuple[int, int],
        max_batch: int,
        *,
        model_name: str,
        precision: str = "fp16",
        cache_dir: str = "",
    ) -> None:
        try:
            cuda.init()
        except cuda.Error as exc:
            raise BackendUnavailable(f"CUDA driver: {exc}") from exc
        if cuda.Device.count() == 0:
            raise BackendUnavailable("pycuda finds no CUDA device")
        device = cuda.Device(0)
        self._cuda_context = device.retain_primary_context()
        self.name = "tensorrt"
        self.device = "cuda"
        self.precision = precision
        self.input_size = input_size
        self.max_batch = max_batch
        self.buckets = tuple(range(1, max_batch + 1))  # one dynamic profile: no padding
        self.max_in_flight = 2  # two slots
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        engine_path = cache / engine_file_name(
            model_name, sha256_of(model_path), trt.__version__, device.name(), precision,
            max_batch, input_size,
        )  # fmt: skip
        with self.current():
            engine_bytes, built = load_or_build(
                engine_path, lambda: self._build(model_path, input_size, max_batch, precision)
            )
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._engine = self._runtime.deserialize_cuda_engine(engine_bytes)
            if self._engine is None:
                raise BackendUnavailable(f"TensorRT cannot load the cached engine {engine_path}")
            names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
            inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if n not in inputs]
            self._input, self._output = inputs[0], outputs[0]
            anchors, width = tuple(self._engine.get_tensor_shape(self._output))[1:]
            self._slots = [self._slot(int(anchors), int(width)) for _ in range(2)]
        self._next = 0
        log.info(
            "TensorRT %s engine on %s (%s, batch 1..%d) %s %s",
            trt.__version__, device.name(), precision, max_batch,
            "built and cached at" if built else "loaded from", engine_path,
        )  # fmt: skip

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        """Make the device's primary context current on the calling thread."""
        self._cuda_context.push()
        try:
            yield
        finally:
            cuda.Context.pop()

    @staticmethod
    def _build(
        model_path: Path, input_size: tuple[int, int], max_batch: int, precision: str
    ) -> bytes:
        log.info("building a TensorRT engine (%s, batch 1..%d): minutes", precision, max_batch)
        model = make_batch_dynamic(onnx.load(str(model_path)))
        if precision == "fp16":
            model = to_fp16(model)
        return _build_engine(
            model.SerializeToString(), model.graph.input[0].name, input_size, max_batch
        )

    def _slot(self, anchors: int, width: int) -> _Slot:
        height, in_width = self.input_size
        host_in = cuda.pagelocked_empty((self.max_batch, 3, height, in_width), np.float32)
        host_out = cuda.pagelocked_empty((self.max_batch, anchors, width), np.float32)
        return _Slot(
            stream=cuda.Stream(),
            context=self._engine.create_execution_context(),
            host_in=host_in,
            host_out=host_out,
            device_in=cuda.mem_alloc(host_in.nbytes),
            device_out=cuda.mem_alloc(host_out.nbytes),
            start=cuda.Event(),
            done=cuda.Event(),
        )

    def submit(self, batch: Any, ready: Any = None) -> TensorRTHandle:
        rows = int(batch.shape[0])
        if not 1 <= rows <= self.max_batch:
            raise ValueError(f"batch of {rows}: the engine takes 1..{self.max_batch}")
        slot = self._slots[self._next]
        if slot.in_flight:
            raise RuntimeError("collect a batch's result before submitting two more")
        self._next = (self._next + 1) % len(self._slots)
        height, width = self.input_size
        np.copyto(slot.host_in[:rows], batch, casting="same_kind")
        with self.current():
            context = slot.context
            context.set_input_shape(self._input, (rows, 3, height, width))
            context.set_tensor_address(self._input, int(slot.device_in))
            context.set_tensor_address(self._output, int(slot.device_out))
            slot.start.record(slot.stream)
            cuda.memcpy_htod_async(slot.device_in, slot.host_in[:rows], slot.stream)
            if not context.execute_async_v3(slot.stream.handle):
                raise RuntimeError("TensorRT could not enqueue the batch")
            cuda.memcpy_dtoh_async(slot.host_out[:rows], slot.device_out, slot.stream)
            slot.done.record(slot.stream)
        slot.in_flight = True
        return TensorRTHandle(self, slot, rows)

    def close(self) -> None:
        with self.current():
            for slot in self._slots:
                slot.stream.synchronize()
                slot.device_in.free()
                slot.device_out.free()
            self._slots.clear()
            del self._engine
        self._cuda_context.detach()
