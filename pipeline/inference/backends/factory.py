"""Choose and load a backend from ModelSettings, and say which and why.

``VAE_BACKEND=auto`` tries, in order, TensorRT, torch on CUDA, ONNX Runtime on CUDA and
ONNX Runtime on the CPU, and keeps the first that imports and finds a device; the log line
names the one chosen and why each one before it was passed over. Naming a backend tries
only its own devices (torch and onnxruntime fall back to the CPU; tensorrt has none).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from pipeline.config import ModelSettings
from pipeline.inference.backends.base import Backend, BackendUnavailable
from pipeline.inference.model_files import locate, model_info

log = logging.getLogger(__name__)

EXTRA_FOR = {"torch": "torch", "tensorrt": "gpu", "pycuda": "gpu"}


@dataclass(frozen=True)
class Candidate:
    """One backend on one device, as ``auto`` or a named backend would try it."""

    kind: str  # tensorrt, torch, onnxruntime
    device: str  # cuda, cpu

    @property
    def label(self) -> str:
        return "tensorrt" if self.kind == "tensorrt" else f"{self.kind}-{self.device}"


AUTO_ORDER = (
    Candidate("tensorrt", "cuda"),
    Candidate("torch", "cuda"),
    Candidate("onnxruntime", "cuda"),
    Candidate("onnxruntime", "cpu"),
)


def candidates_for(backend: str) -> list[Candidate]:
    """What a VAE_BACKEND value tries, in order."""
    if backend == "auto":
        return list(AUTO_ORDER)
    if backend == "tensorrt":
        return [Candidate("tensorrt", "cuda")]
    if backend in ("torch", "onnxruntime"):
        return [Candidate(backend, "cuda"), Candidate(backend, "cpu")]
    raise BackendUnavailable(f"unknown backend {backend!r}")


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` is fp16 on a GPU (tensor cores) and fp32 on the CPU (no fp16 arithmetic)."""
    if precision == "auto":
        return "fp16" if device == "cuda" else "fp32"
    return precision


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or module).split(".")[0]
        extra = EXTRA_FOR.get(missing)
        hint = f" (pip install 'video-analytics-engine[{extra}]')" if extra else ""
        raise BackendUnavailable(f"{missing} is not installed{hint}") from None


def load_candidate(
    candidate: Candidate, model: ModelSettings, max_batch: int, precision: str | None = None
) -> Backend:
    """Load one backend on one device; BackendUnavailable says why it cannot run here."""
    info = model_info(model.name)
    path = locate(model.name, model.dir)
    chosen = precision or resolve_precision(model.precision, candidate.device)
    if candidate.kind == "onnxruntime":
        ort_module = _import("pipeline.inference.backends.onnxruntime")
        backend: Backend = ort_module.OnnxRuntimeBackend(
            path, info.input_size, max_batch, threads=model.threads, device=candidate.device,
            precision=chosen, cache_dir=model.engine_cache_dir,
        )  # fmt: skip
    elif candidate.kind == "torch":
        _import("torch")
        torch_module = _import("pipeline.inference.backends.torch")
        backend = torch_module.TorchBackend(
            path, info.input_size, max_batch, device=candidate.device, precision=chosen,
            threads=model.threads, cuda_graphs=model.cuda_graphs,
        )  # fmt: skip
    elif candidate.kind == "tensorrt":
        trt_module = _import("pipeline.inference.backends.tensorrt")
        backend = trt_module.TensorRTBackend(
            path, info.input_size, max_batch, model_name=model.name, precision=chosen,
            cache_dir=model.engine_cache_dir,
        )  # fmt: skip
    else:
        raise BackendUnavailable(f"unknown backend {candidate.kind!r}")
    return backend


def create_backend(model: ModelSettings, max_batch: int) -> Backend:
    """Load the configured model on the configured (or best available) backend."""
    passed_over: list[str] = []
    for candidate in candidates_for(model.backend):
        try:
            backend = load_candidate(candidate, model, max_batch)
        except BackendUnavailable as exc:
            passed_over.append(f"{candidate.label}: {exc}")
            continue
        except Exception as exc:
            if model.backend != "auto" or candidate.device != "cuda":
                raise
            # auto: a GPU stack that imports but fails (driver, engine build) must not stop
            # the worker from running on the next candidate; the reason is logged.
            log.warning("backend %s failed to load", candidate.label, exc_info=True)
            passed_over.append(f"{candidate.label}: failed: {exc!r}")
            continue
        why = f"; passed over: {'; '.join(passed_over)}" if passed_over else ""
        log.info(
            "backend %s (%s) chosen for VAE_BACKEND=%s%s",
            backend.name,
            backend.precision,
            model.backend,
            why,
        )
        return backend
    raise BackendUnavailable(
        f"no backend can run VAE_BACKEND={model.backend} here: " + "; ".join(passed_over)
    )
