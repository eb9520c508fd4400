"""One typed container of boxes passed everywhere, in the spirit of supervision's Detections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.serde.records import DetectedObjectRecord


@dataclass(frozen=True, slots=True)
class Detections:
    """Boxes of one image: ``xyxy`` in that image's pixels, sorted by descending confidence."""

    xyxy: npt.NDArray[np.float32]  # (N, 4) x1, y1, x2, y2
    confidence: npt.NDArray[np.float32]  # (N,)
    class_id: npt.NDArray[np.int32]  # (N,)

    def __post_init__(self) -> None:
        n = len(self.confidence)
        if self.xyxy.shape != (n, 4) or self.class_id.shape != (n,):
            raise ValueError(
                f"inconsistent shapes: xyxy {self.xyxy.shape}, confidence {self.confidence.shape}, "
                f"class_id {self.class_id.shape}"
            )

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32)
        )

    def __len__(self) -> int:
        return len(self.confidence)

    def to_records(self, labels: Sequence[str]) -> list[DetectedObjectRecord]:
        """The Avro shape of these boxes (labels looked up by class id)."""
        boxes = self.xyxy.tolist()
        return [
            {
                "class_id": int(c),
                "label": labels[c] if 0 <= c < len(labels) else f"class{c}",
                "score": float(s),
                "x1": b[0],
                "y1": b[1],
                "x2": b[2],
                "y2": b[3],
            }
            for b, s, c in zip(boxes, self.confidence.tolist(), self.class_id.tolist(), strict=True)
        ]
