"""Letterboxing: aspect kept, top-left placement, grey padding, ratio for mapping back."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.inference.preprocess.cpu import (
    PAD_VALUE,
    UndecodableImage,
    decode_jpeg_bgr,
    letterbox,
    letterbox_ratio,
    to_chw_float,
)


def test_landscape_image_fills_the_width() -> None:
    image = np.full((576, 768, 3), 200, np.uint8)
    canvas, ratio = letterbox(image, (416, 416))
    assert ratio == pytest.approx(416 / 768)
    assert canvas.shape == (416, 416, 3)
    new_h = int(576 * ratio)  # 312
    assert (canvas[:new_h] == 200).all()
    assert (canvas[new_h:] == PAD_VALUE).all()


def test_portrait_image_fills_the_height() -> None:
    image = np.full((800, 400, 3), 10, np.uint8)
    canvas, ratio = letterbox(image, (416, 416))
    assert ratio == pytest.approx(416 / 800)
    assert (canvas[:, :208] == 10).all()
    assert (canvas[:, 208:] == PAD_VALUE).all()


def test_small_image_is_scaled_up() -> None:
    canvas, ratio = letterbox(np.zeros((104, 208, 3), np.uint8), (416, 416))
    assert ratio == 2.0
    assert (canvas[:208] == 0).all() and (canvas[208:] == PAD_VALUE).all()


def test_exact_size_is_copied_untouched() -> None:
    image = np.random.default_rng(0).integers(0, 255, (416, 416, 3), dtype=np.uint8)
    canvas, ratio = letterbox(image, (416, 416))
    assert ratio == 1.0
    assert np.array_equal(canvas, image)


def test_channel_order_survives_resizing() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    canvas, _ = letterbox(image, (416, 416))
    assert (canvas[:200, :, 0] == 255).all() and (canvas[:200, :, 1:] == 0).all()


def test_ratio_maps_boxes_back() -> None:
    assert letterbox_ratio(576, 768, (416, 416)) * 768 == pytest.approx(416)


def test_chw_float_layout() -> None:
    canvas = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = np.empty((3, 2, 3), np.float32)
    to_chw_float(canvas, out)
    assert out[1, 0, 2] == canvas[0, 2, 1]
    assert out.dtype == np.float32


def test_decode_is_bgr(dog_jpeg: bytes) -> None:
    image = decode_jpeg_bgr(dog_jpeg)
    assert image.shape == (576, 768, 3) and image.dtype == np.uint8


def test_undecodable_bytes() -> None:
    with pytest.raises(UndecodableImage):
        decode_jpeg_bgr(b"\xff\xd8\xff\xe0nonsense\xff\xd9")
