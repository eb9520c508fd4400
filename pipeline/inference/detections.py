"""One typed container of boxes passed everywhere, in the spirit of supervision's Detections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


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
