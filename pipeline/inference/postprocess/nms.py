"""Greedy non-maximum suppression in NumPy, grouped (per class, per image) in one pass."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]


def box_iou(box: FloatArray, boxes: FloatArray) -> npt.NDArray[np.float32]:
    """IoU of one x1,y1,x2,y2 box against each row of ``boxes``."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> npt.NDArray[np.intp]:
    """Indices of the boxes kept, highest score first; a box is dropped when its IoU with a
    higher-scoring kept box exceeds ``iou_threshold``."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


def grouped_nms(
    boxes: FloatArray,
    scores: FloatArray,
    groups: npt.NDArray[np.int64],
    iou_threshold: float,
) -> npt.NDArray[np.intp]:
    """NMS that never lets a box suppress one of another group (class, or image x class).

    Each group is shifted to its own region of the plane, so one NMS over all boxes
    equals one NMS per group. The shift is done in float64: offsets reach millions of
    pixels, where float32 would round boxes by whole pixels.
    """
    if boxes.size == 0:
        return np.zeros((0,), dtype=np.intp)
    wide = boxes.astype(np.float64)
    span = float(wide.max()) - min(0.0, float(wide.min())) + 1.0
    shifted = wide + (groups.astype(np.float64) * span)[:, None]
    return nms(shifted, scores, iou_threshold)
