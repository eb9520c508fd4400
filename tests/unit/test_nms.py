"""NMS against hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.inference.postprocess.nms import box_iou, grouped_nms, nms


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def test_iou_by_hand() -> None:
    a = boxes((0, 0, 10, 10))[0]
    others = boxes((0, 0, 10, 10), (5, 0, 15, 10), (10, 10, 20, 20), (20, 20, 30, 30), (0, 0, 5, 5))
    assert box_iou(a, others) == pytest.approx([1.0, 50 / 150, 0.0, 0.0, 25 / 100])


def test_overlapping_lower_score_is_suppressed() -> None:
    b = boxes((0, 0, 10, 10), (1, 1, 11, 11), (50, 50, 60, 60))
    scores = np.asarray([0.9, 0.8, 0.7], np.float32)
    # IoU(0, 1) = 81 / 119 = 0.68
    assert nms(b, scores, 0.45).tolist() == [0, 2]
    assert nms(b, scores, 0.7).tolist() == [0, 1, 2]


def test_keeps_in_score_order() -> None:
    b = boxes((0, 0, 1, 1), (10, 10, 11, 11), (20, 20, 21, 21))
    assert nms(b, np.asarray([0.1, 0.9, 0.5], np.float32), 0.5).tolist() == [1, 2, 0]


def test_suppression_is_transitive_only_through_kept_boxes() -> None:
    # A overlaps B, B overlaps C, A does not overlap C: B goes, so C stays.
    b = boxes((0, 0, 10, 10), (6, 0, 16, 10), (12, 0, 22, 10))
    assert nms(b, np.asarray([0.9, 0.8, 0.7], np.float32), 0.2).tolist() == [0, 2]


def test_groups_never_suppress_each_other() -> None:
    b = boxes((0, 0, 10, 10), (0, 0, 10, 10), (0, 0, 10, 10))
    scores = np.asarray([0.9, 0.8, 0.7], np.float32)
    groups = np.asarray([0, 1, 0], np.int64)
    assert sorted(grouped_nms(b, scores, groups, 0.45).tolist()) == [0, 1]


def test_grouped_nms_with_many_groups_keeps_precision() -> None:
    # Group offsets reach millions of pixels; boxes must still compare exactly.
    b = boxes((100.25, 100.5, 200.75, 300.0), (100.25, 100.5, 200.75, 300.0))
    groups = np.asarray([5119, 5119], np.int64)
    kept = grouped_nms(b, np.asarray([0.5, 0.4], np.float32), groups, 0.99)
    assert kept.tolist() == [0]


def test_empty() -> None:
    empty = np.zeros((0, 4), np.float32)
    assert grouped_nms(empty, np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5).size == 0
