"""Synthetic frames (``synthetic:WxH``): load without any media, at a realistic JPEG size.

A smooth gradient with a moving block and sensor-like noise compresses about like camera
footage (pure noise would be far larger, a flat colour far smaller).
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass

import numpy as np
import simplejpeg

from connectors.sources.base import EncodedFrame, FrameSource, Progress

SPEC = re.compile(r"^synthetic(?::(\d+)x(\d+))?$")
DEFAULT_SIZE = (320, 240)


def parse_synthetic(spec: str) -> tuple[int, int] | None:
    """(width, height) for ``synthetic`` or ``synthetic:WxH``; None for anything else."""
    match = SPEC.match(spec.strip().lower())
    if match is None:
        return None
    if match.group(1) is None:
        return DEFAULT_SIZE
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ValueError(f"synthetic frame size {width}x{height} is outside 16..8192 pixels")
    return width, height


@dataclass
class SyntheticSource(FrameSource):
    """``count`` distinct frames of ``width`` x ``height``, reproducible (seeded)."""

    width: int
    height: int
    _: KW_ONLY
    quality: int = 85
    count: int = 30

    @property
    def description(self) -> str:
        return f"synthetic {self.width}x{self.height}"

    def load(self, progress: Progress | None = None) -> list[EncodedFrame]:
        rng = np.random.default_rng(0)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        base = np.stack(
            [
                xs / self.width * 255,
                ys / self.height * 255,
                (xs + ys) / (self.width + self.height) * 255,
            ],
            axis=-1,
        )
        frames = []
        block = max(8, min(self.width, self.height) // 4)
        for index in range(self.count):
            image = base + rng.normal(0, 8, base.shape).astype(np.float32)
            x = (index * 7) % max(1, self.width - block)
            y = (index * 5) % max(1, self.height - block)
            image[y : y + block, x : x + block] = (200, 40, 40)
            rgb = np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
            jpeg = simplejpeg.encode_jpeg(rgb, quality=self.quality, colorspace="RGB")
            frames.append(EncodedFrame(jpeg, self.width, self.height))
            if progress:
                progress(index + 1, self.count)
        return frames
