"""Reference detections of the shipped model on the shipped media (from ../shared/models/MODELS.md).

Conf > 0.3, class-aware NMS at IoU 0.45, boxes x1, y1, x2, y2 in original pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DOG_JPG = [
    # label, score, box
    ("dog", 0.829, (133.1, 207.0, 324.6, 542.3)),
    ("car", 0.809, (466.7, 78.2, 691.5, 171.5)),
    ("bicycle", 0.808, (45.6, 131.9, 571.7, 430.6)),
    ("cat", 0.380, (131.2, 212.9, 321.6, 541.0)),
]

# vtest.avi frame 300 (0-based, PyAV, RGB->BGR): the examples MODELS.md names.
VTEST_300_PERSON = ("person", 0.837, (580.7, 159.2, 612.7, 234.3))
VTEST_300_PERSONS = 6  # persons scoring 0.72-0.84
VTEST_300_TRUCK_SCORE = 0.751
VTEST_300_CAR_SCORE = 0.793

SCORE_TOLERANCE = 0.01
BOX_TOLERANCE_PX = 1.5


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_matches_reference(
    objects: list[dict[str, Any]],
    reference: Sequence[tuple[str, float, tuple[float, float, float, float]]] = DOG_JPG,
    score_tol: float = SCORE_TOLERANCE,
    box_tol: float = BOX_TOLERANCE_PX,
) -> None:
    """Every reference box is found (same label, score and box within tolerance), nothing else."""
    assert len(objects) == len(reference), f"expected {len(reference)} objects, got {objects}"
    for label, score, box in reference:
        same_label = [o for o in objects if o["label"] == label]
        assert same_label, f"no {label} in {objects}"
        best = max(same_label, key=lambda o: iou(o["box"], box))
        assert abs(best["score"] - score) <= score_tol, f"{label}: score {best['score']} vs {score}"
        for got, want in zip(best["box"], box, strict=True):
            assert abs(got - want) <= box_tol, f"{label}: box {best['box']} vs {box}"
