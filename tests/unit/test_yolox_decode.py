"""YOLOX output decoding on a synthetic output with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.inference.postprocess.yolox import anchor_grid, decode_boxes, postprocess

SIZE = (416, 416)
ANCHORS = 52 * 52 + 26 * 26 + 13 * 13


def test_grid_layout() -> None:
    grid, strides = anchor_grid(SIZE)
    assert grid.shape == (ANCHORS, 2) and strides.shape == (ANCHORS, 1)
    assert grid[1].tolist() == [1, 0]  # x fastest
    assert grid[52].tolist() == [0, 1]
    assert strides[0, 0] == 8 and strides[52 * 52, 0] == 16 and strides[-1, 0] == 32
    assert grid[-1].tolist() == [12, 12]


def empty_output(batch: int = 1) -> np.ndarray:
    return np.zeros((batch, ANCHORS, 85), np.float32)


def test_decode_one_anchor_by_hand() -> None:
    raw = empty_output()
    index = 52 * 52 + 26 * 3 + 5  # stride 16, cell x=5, y=3
    raw[0, index, :4] = [0.5, 0.25, np.log(4.0), np.log(2.0)]
    box = decode_boxes(raw, SIZE)[0, index]
    # centre ((0.5 + 5) * 16, (0.25 + 3) * 16) = (88, 52); size 64 x 32
    assert box.tolist() == pytest.approx([56, 36, 120, 68])


def test_postprocess_scores_classes_and_scales_back() -> None:
    raw = empty_output(2)
    index = 10  # stride 8, cell (10, 0)
    raw[1, index, :4] = [0.0, 0.0, np.log(2.0), np.log(2.0)]
    raw[1, index, 4] = 0.9  # objectness
    raw[1, index, 5 + 16] = 0.8  # dog
    raw[1, index, 5 + 15] = 0.4  # cat: 0.36 also clears 0.3
    ratios = np.asarray([1.0, 0.5], np.float32)
    results = postprocess(raw, ratios, SIZE, conf_threshold=0.3, iou_threshold=0.45)
    assert len(results[0]) == 0
    second = results[1]
    assert second.class_id.tolist() == [16, 15]
    assert second.confidence.tolist() == pytest.approx([0.72, 0.36])
    # centre (80, 0) size 16 on the canvas -> / 0.5
    assert second.xyxy[0].tolist() == pytest.approx([144, -16, 176, 16])


def test_postprocess_clips_to_the_image() -> None:
    raw = empty_output()
    raw[0, 0, :5] = [0.0, 0.0, np.log(4.0), np.log(4.0), 1.0]
    raw[0, 0, 5] = 1.0
    result = postprocess(
        raw, np.asarray([1.0], np.float32), SIZE, 0.3, 0.45, np.asarray([[300, 400]], np.int32)
    )[0]
    assert result.xyxy[0].tolist() == pytest.approx([0, 0, 16, 16])


def test_wrong_anchor_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="anchors"):
        decode_boxes(np.zeros((1, 100, 85), np.float32), SIZE)
