"""Every backend and precision present agrees with ONNX Runtime FP32 on the shipped media.

Same classes, IoU >= 0.9 and scores within 0.05 (the issue's tolerance for FP16), frame
by frame, on a batch of three frames (which a CUDA-graph backend pads to a bucket of
four). Backends that cannot run here are skipped with the reason (``pytest -rs`` shows
them; CI has no GPU, so the CUDA and TensorRT rows are skipped there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline import config
from pipeline.inference.backends.base import Backend, BackendUnavailable
from pipeline.inference.backends.factory import AUTO_ORDER, Candidate, load_candidate
from pipeline.inference.detections import Detections
from pipeline.inference.detector import Detector, choose_preparer
from pipeline.inference.labels import COCO_CLASSES
from tests.reference import iou
from tests.sample_clip import sample_jpeg

# VAE_MODEL_DIR and the rest of VAE_MODEL_*, as every service reads them.
MODEL = config.load().model

SCORE_TOLERANCE = 0.05
MIN_IOU = 0.9
CANDIDATES = [*AUTO_ORDER, Candidate("torch", "cpu")]


@pytest.fixture(scope="module")
def frames(media: Path, dog_jpeg: bytes) -> list[bytes]:
    return [dog_jpeg, sample_jpeg(media, 100), sample_jpeg(media, 300)]


@pytest.fixture(scope="module")
def reference(frames: list[bytes]) -> list[Detections]:
    backend = load_candidate(Candidate("onnxruntime", "cpu"), MODEL, 4, "fp32")
    found = Detector(backend).detect(frames)
    backend.close()
    assert all(d is not None for d in found)
    return [d for d in found if d is not None]


def load_or_skip(candidate: Candidate, precision: str) -> Backend:
    try:
        return load_candidate(candidate, MODEL, 4, precision)
    except BackendUnavailable as exc:
        pytest.skip(f"{candidate.label} {precision}: {exc}")


def assert_agrees(got: Detections, want: Detections, where: str) -> None:
    assert sorted(got.class_id.tolist()) == sorted(want.class_id.tolist()), where
    for box, score, cls in zip(want.xyxy, want.confidence, want.class_id, strict=True):
        same = np.flatnonzero(got.class_id == cls)
        best = max(same, key=lambda i: iou(got.xyxy[i].tolist(), box.tolist()))
        label = COCO_CLASSES[int(cls)]
        overlap = iou(got.xyxy[best].tolist(), box.tolist())
        assert overlap >= MIN_IOU, f"{where}: {label} IoU {overlap:.3f}"
        assert abs(float(got.confidence[best]) - float(score)) <= SCORE_TOLERANCE, (
            f"{where}: {label} score {got.confidence[best]:.3f} vs {score:.3f}"
        )


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.label)
def test_backend_agrees_with_onnxruntime_fp32(
    candidate: Candidate, precision: str, frames: list[bytes], reference: list[Detections]
) -> None:
    backend = load_or_skip(candidate, precision)
    try:
        # The preparer a worker would use: on a torch CUDA backend, nvJPEG + GPU letterbox.
        detector = Detector(backend, preparer=choose_preparer(backend))
        found = detector.detect(frames)
        for index, (got, want) in enumerate(zip(found, reference, strict=True)):
            assert got is not None
            assert_agrees(got, want, f"{backend.name} {precision} frame {index}")
    finally:
        backend.close()


@pytest.mark.parametrize("path", ["gpu-code", "cpu-torch-resize"])
def test_torch_letterbox_agrees_with_pillow_on_the_cpu(
    path: str, frames: list[bytes], reference: list[Detections]
) -> None:
    """The GPU preprocessing code, and the CPU's torch resize, run on the CPU, feed ONNX
    Runtime FP32 as well as Pillow does."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    from pipeline.inference.preprocess.batch import CpuPreparer, Preparer
    from pipeline.inference.preprocess.torch import TorchPreparer

    backend = load_candidate(Candidate("onnxruntime", "cpu"), MODEL, 4, "fp32")
    preparer: Preparer = (
        TorchPreparer(backend.input_size, "cpu", torch.float32, nvjpeg=False)
        if path == "gpu-code"
        else CpuPreparer(backend.input_size, resize="torch")
    )
    found = Detector(backend, preparer=preparer).detect(frames)
    for index, (got, want) in enumerate(zip(found, reference, strict=True)):
        assert got is not None
        assert_agrees(got, want, f"{path} frame {index}")
