"""Choose and load a backend from ModelSettings, saying which and why."""

from __future__ import annotations

import logging

from pipeline.config import ModelSettings
from pipeline.inference.backends.base import Backend, BackendUnavailable
from pipeline.inference.backends.onnxruntime import OnnxRuntimeBackend
from pipeline.inference.model_files import locate, model_info

log = logging.getLogger(__name__)


def create_backend(model: ModelSettings, max_batch: int) -> Backend:
    """Load the configured model on the configured (or best available) backend."""
    info = model_info(model.name)
    path = locate(model.name, model.dir)
    if model.backend in ("tensorrt", "torch"):
        raise BackendUnavailable(
            f"VAE_BACKEND={model.backend} is not available in this build; use onnxruntime"
        )
    if model.precision != "fp32":
        raise BackendUnavailable("onnxruntime on CPU runs fp32 only (VAE_MODEL_PRECISION=fp32)")
    backend = OnnxRuntimeBackend(path, info.input_size, max_batch, threads=model.threads)
    log.info("backend %s (%s) for %s from %s", backend.name, model.backend, model.name, path)
    return backend
