"""Decoding JPEG only as large as the letterbox needs: same detections as a full decode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import config
from pipeline.inference.backends import create_backend
from pipeline.inference.backends.base import Backend
from pipeline.inference.detections import Detections
from pipeline.inference.detector import Detector
from pipeline.inference.preprocess.batch import CpuPreparer
from pipeline.inference.preprocess.cpu import dct_scale_for, decode_jpeg_bgr_for
from tests.reference import iou
from tests.sample_clip import sample_frame

SIZE = (416, 416)
MARGIN = config.ModelSettings().decode_margin  # the worker's default


@pytest.fixture(scope="module")
def backend() -> Backend:
    return create_backend(config.load().model, max_batch=4)


def upscaled(image: Image.Image, width: int, height: int) -> bytes:
    """A camera-sized frame from the sample media (Pillow's bicubic, JPEG quality 90)."""
    out = io.BytesIO()
    image.resize((width, height), Image.Resampling.BICUBIC).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def large_frames(dog_jpeg: bytes, media: Path) -> list[bytes]:
    dog = Image.open(io.BytesIO(dog_jpeg)).convert("RGB")
    street = Image.fromarray(sample_frame(media, 0))
    return [
        upscaled(dog, 1920, 1440),  # decoded at 1/2 (at the default margin)
        upscaled(dog, 3072, 2304),  # 1/4
        upscaled(street, 1920, 1080),  # 1080p (stretched): 1/2
        upscaled(street, 3840, 2160),  # 4K: 1/4
    ]


def test_the_scale_is_the_smallest_that_covers_the_letterbox() -> None:
    assert dct_scale_for(576, 768, SIZE) == 1  # 1/2 would be 288x384, under 312x416
    assert dct_scale_for(1152, 1536, SIZE) == 2
    assert dct_scale_for(1080, 1920, SIZE) == 4  # 270x480 covers 234x416
    assert dct_scale_for(2160, 3840, SIZE) == 8
    assert dct_scale_for(300, 200, SIZE) == 1  # smaller than the input: full


def test_a_margin_keeps_a_larger_scale() -> None:
    assert dct_scale_for(1080, 1920, SIZE, MARGIN) == 2  # 540x960, over twice 234x416
    assert dct_scale_for(2160, 3840, SIZE, MARGIN) == 4
    assert dct_scale_for(1152, 1536, SIZE, MARGIN) == 1
    assert dct_scale_for(2160, 3840, SIZE, 0) == 1  # off


def test_reduced_decode_reports_the_full_size(large_frames: list[bytes]) -> None:
    image, height, width = decode_jpeg_bgr_for(large_frames[2], SIZE)
    assert (height, width) == (1080, 1920)
    assert image.shape == (270, 480, 3)
    image, _, _ = decode_jpeg_bgr_for(large_frames[2], SIZE, MARGIN)
    assert image.shape == (540, 960, 3)


def test_frames_under_twice_the_input_are_decoded_in_full_bit_for_bit(dog_jpeg: bytes) -> None:
    full = CpuPreparer(SIZE).prepare([dog_jpeg])
    reduced = CpuPreparer(SIZE, decode_margin=MARGIN).prepare([dog_jpeg])
    assert np.array_equal(full.tensor, reduced.tensor)
    assert np.array_equal(full.ratios, reduced.ratios)
    assert np.array_equal(full.sizes, reduced.sizes)


def assert_same_objects(reduced: Detections, full: Detections) -> None:
    """Same classes, each box at IoU >= 0.9 with its full-decode twin, scores within 0.05."""
    assert sorted(reduced.class_id.tolist()) == sorted(full.class_id.tolist())
    for box, score, cls in zip(full.xyxy, full.confidence, full.class_id, strict=True):
        same = [i for i in range(len(reduced)) if reduced.class_id[i] == cls]
        best = max(same, key=lambda i: iou(reduced.xyxy[i].tolist(), box.tolist()))
        assert iou(reduced.xyxy[best].tolist(), box.tolist()) >= 0.9
        assert abs(float(reduced.confidence[best]) - float(score)) <= 0.05


def test_reduced_decode_finds_what_a_full_decode_finds(
    backend: Backend, large_frames: list[bytes]
) -> None:
    full = Detector(backend, preparer=CpuPreparer(backend.input_size)).detect(large_frames)
    reduced = Detector(
        backend, preparer=CpuPreparer(backend.input_size, decode_margin=MARGIN)
    ).detect(large_frames)
    found = 0
    for r, f in zip(reduced, full, strict=True):
        assert r is not None and f is not None
        assert_same_objects(r, f)
        found += len(f)
    assert found >= 3 * len(large_frames)  # the frames hold real objects: dog, bicycle, people
