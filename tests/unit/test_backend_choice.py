"""VAE_BACKEND: what each value tries, in which order, and what the log says."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import replace

import pytest

from pipeline import config
from pipeline.inference.backends.base import BackendUnavailable
from pipeline.inference.backends.factory import (
    Candidate,
    candidates_for,
    create_backend,
    resolve_precision,
)

# VAE_MODEL_DIR and the rest of VAE_MODEL_*, as every service reads them.
MODEL = config.load().model


def test_auto_prefers_tensorrt_then_torch_then_onnxruntime_gpu_then_cpu() -> None:
    assert [c.label for c in candidates_for("auto")] == [
        "tensorrt",
        "torch-cuda",
        "onnxruntime-cuda",
        "onnxruntime-cpu",
    ]


def test_a_named_backend_tries_only_its_own_devices() -> None:
    assert candidates_for("torch") == [Candidate("torch", "cuda"), Candidate("torch", "cpu")]
    assert candidates_for("tensorrt") == [Candidate("tensorrt", "cuda")]
    with pytest.raises(BackendUnavailable):
        candidates_for("tflite")


def test_auto_precision_is_fp16_on_gpu_and_fp32_on_cpu() -> None:
    assert resolve_precision("auto", "cuda") == "fp16"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"


def test_auto_logs_its_choice_and_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pipeline.inference.backends.factory"):
        backend = create_backend(replace(MODEL, backend="auto"), max_batch=4)
    try:
        chosen = [r.getMessage() for r in caplog.records if "chosen" in r.getMessage()]
        assert len(chosen) == 1 and backend.name in chosen[0]
        if backend.name == "onnxruntime-cpu":  # no GPU stack here: every GPU option is explained
            for label in ("tensorrt:", "torch-cuda:", "onnxruntime-cuda:"):
                assert label in chosen[0]
    finally:
        backend.close()


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_tensorrt_without_tensorrt_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailable, match=r"VAE_BACKEND=tensorrt.*not installed"):
        create_backend(replace(MODEL, backend="tensorrt"), max_batch=4)
