"""PyTorch: the ONNX graph as a torch module; on CUDA, FP16, channels-last and CUDA graphs.

On CUDA each batch bucket (1, 2, 4, ... max) is captured once as a CUDA graph with static
input and output buffers: a replay launches the whole network in one call, with none of
the Python per-op overhead that dominates a small model like YOLOX-Nano. Two streams
keep the device busy: host batches are copied in on a copy stream from page-locked
slots (two, so the copy of batch k+1 overlaps the inference of batch k), and the graphs
replay on a compute stream. Batches prepared on the GPU (nvJPEG decode and letterbox, see
``preprocess.torch``) arrive with an event the compute stream waits on instead.

On the CPU the same module runs eagerly (how the tests exercise this backend here).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from pipeline.inference.backends.base import BackendUnavailable, Done
from pipeline.inference.backends.buckets import batch_buckets, bucket_for
from pipeline.inference.backends.onnx_graph import make_batch_dynamic
from pipeline.inference.backends.onnx_to_torch import onnx_to_torch
from pipeline.runtime import usable_cores

log = logging.getLogger(__name__)

WARMUP_RUNS = 3  # before capture: cuDNN picks its algorithms (benchmark mode) on these


def cuda_device_name() -> str:
    """The first CUDA device's name, or a BackendUnavailable saying why there is none."""
    if not torch.cuda.is_available():
        build = torch.version.cuda
        raise BackendUnavailable(
            "torch finds no CUDA device"
            + ("" if build else f" (torch {torch.__version__} is a CPU-only build)")
        )
    return str(torch.cuda.get_device_name(0))


@dataclass
class _Slot:
    """A page-locked host buffer and its device twin, for one batch in flight."""

    host: torch.Tensor
    staging: torch.Tensor
    copied: torch.cuda.Event  # the host -> device copy finished: host buffer free again
    consumed: torch.cuda.Event  # the compute stream has read staging: it may be overwritten


class CudaHandle:
    """A batch enqueued on the compute stream."""

    __slots__ = ("_done", "_output", "_start")

    def __init__(self, output: torch.Tensor, start: torch.cuda.Event, done: torch.cuda.Event):
        self._output = output
        self._start = start
        self._done = done

    def result(self) -> torch.Tensor:
        self._done.synchronize()
        return self._output

    @property
    def elapsed_ms(self) -> float:
        self._done.synchronize()
        return float(self._start.elapsed_time(self._done))


class TorchBackend:
    """YOLOX through torch, eager on the CPU, CUDA graphs per batch bucket on a GPU."""

    def __init__(
        self,
        model_path: Path,
        input_size: tuple[int, int],
        max_batch: int,
        *,
        device: str = "cuda",
        precision: str = "fp16",
        threads: int = 0,
        cuda_graphs: bool = True,
    ) -> None:
        if device == "cuda":
            gpu = cuda_device_name()
        elif precision == "fp16":
            log.warning("torch fp16 on the CPU runs, but far slower than fp32")
        self.name = f"torch-{device}"
        self.device = device
        self.precision = precision
        self.input_size = input_size
        self.max_batch = max_batch
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self._torch_device = torch.device(device)
        module = onnx_to_torch(make_batch_dynamic(onnx.load(str(model_path))))
        self._model = module.to(self._torch_device, self.dtype).eval()
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._static_out: dict[int, torch.Tensor] = {}
        if device == "cpu":
            torch.set_num_threads(threads or usable_cores())
            self.buckets = tuple(range(1, max_batch + 1))
            self.max_in_flight = 1
            log.info("torch on the CPU (%s), %d threads", precision, torch.get_num_threads())
            return
        torch.backends.cudnn.benchmark = True
        for parameter in self._model.parameters():  # convolution weights, channels-last
            if parameter.dim() == 4:
                parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
        self.buckets = batch_buckets(max_batch)
        self.max_in_flight = 2  # two page-locked slots; copy and compute streams
        self._compute = torch.cuda.Stream()
        self._copy = torch.cuda.Stream()
        height, width = input_size
        self._static_in = {
            b: torch.zeros(
                (b, 3, height, width), dtype=self.dtype, device=self._torch_device
            ).contiguous(memory_format=torch.channels_last)
            for b in self.buckets
        }
        self._slots = [self._slot(max_batch, height, width) for _ in range(2)]
        self._next_slot = 0
        started = time.perf_counter()
        self._prepare_buckets(cuda_graphs)
        log.info(
            "torch on %s (%s, channels-last, %s) buckets %s ready in %.1f s",
            gpu,
            precision,
            "CUDA graphs" if cuda_graphs else "eager",
            list(self.buckets),
            time.perf_counter() - started,
        )

    def _slot(self, rows: int, height: int, width: int) -> _Slot:
        shape = (rows, 3, height, width)
        return _Slot(
            host=torch.empty(shape, dtype=torch.float32, pin_memory=True),
            staging=torch.empty(shape, dtype=torch.float32, device=self._torch_device),
            copied=torch.cuda.Event(),
            consumed=torch.cuda.Event(),
        )

    @torch.inference_mode()
    def _prepare_buckets(self, cuda_graphs: bool) -> None:
        """Warm every bucket up (cuDNN autotuning), then capture it as a CUDA graph."""
        with torch.cuda.stream(self._compute):
            for bucket, static in self._static_in.items():
                for _ in range(WARMUP_RUNS):
                    self._model(static)
                if cuda_graphs:
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, stream=self._compute):
                        self._static_out[bucket] = self._model(static)
                    self._graphs[bucket] = graph
        self._compute.synchronize()

    # --- inference -------------------------------------------------------------------

    def submit(self, batch: Any, ready: Any = None) -> Done | CudaHandle:
        """Start a batch: a float32 host array, or a tensor on the device (``ready``: the
        CUDA event after which it is complete, from the stream that produced it)."""
        if self.device == "cpu":
            return self._run_cpu(batch)
        return self._enqueue(batch, ready)

    @torch.inference_mode()
    def _run_cpu(self, batch: Any) -> Done:
        start = time.perf_counter()
        tensor = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
        output = self._model(tensor.to(self.dtype)).float()
        return Done(output, (time.perf_counter() - start) * 1e3)

    @torch.inference_mode()
    def _enqueue(self, batch: Any, ready: Any) -> CudaHandle:
        rows = int(batch.shape[0])
        bucket = bucket_for(rows, self.buckets)
        slot: _Slot | None = None
        if isinstance(batch, np.ndarray):
            slot = self._slots[self._next_slot]
            self._next_slot = (self._next_slot + 1) % len(self._slots)
            slot.copied.synchronize()  # the previous copy out of this pinned buffer is done
            slot.host[:rows].copy_(torch.from_numpy(batch))
            with torch.cuda.stream(self._copy):
                self._copy.wait_event(slot.consumed)  # compute has read the last batch here
                slot.staging[:rows].copy_(slot.host[:rows], non_blocking=True)
                slot.copied.record(self._copy)
            source, ready = slot.staging[:rows], slot.copied
        else:
            source = batch
        start, done = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self._compute):
            if ready is not None:
                self._compute.wait_event(ready)
            start.record(self._compute)
            static = self._static_in[bucket]
            static[:rows].copy_(source)  # cast to the model's dtype, channels-last
            if slot is not None:
                slot.consumed.record(self._compute)
            else:
                source.record_stream(self._compute)
            if bucket in self._graphs:
                self._graphs[bucket].replay()
                raw = self._static_out[bucket]
            else:
                raw = self._model(static)
            # A fresh float32 tensor: the next replay overwrites the static output.
            output = raw[:rows].to(torch.float32, copy=True)
            done.record(self._compute)
        return CudaHandle(output, start, done)

    def close(self) -> None:
        self._graphs.clear()
        self._static_out.clear()
        del self._model
        if self.device == "cuda":
            torch.cuda.empty_cache()
