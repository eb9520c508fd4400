"""The one base every frame source shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

Progress = Callable[[int, int | None], None]  # (done, total or None)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One JPEG frame and its size."""

    jpeg: bytes
    width: int
    height: int


class FrameSource(ABC):
    """A finite list of frames, loaded once; replays loop over it."""

    #: frames per second the source was recorded at (None for photos)
    native_fps: float | None = None

    @abstractmethod
    def load(self, progress: Progress | None = None) -> list[EncodedFrame]:
        """Decode (and re-encode) every frame into memory."""

    @property
    @abstractmethod
    def description(self) -> str:
        """What this source is, for logs."""


def encode_rgb(rgb: npt.NDArray[np.uint8], *, width: int, quality: int) -> EncodedFrame:
    """One decoded frame as the JPEG a source sends: resized to ``width`` (0, or the frame's
    own width, keeps it; the height follows the aspect ratio)."""
    if width and rgb.shape[1] != width:
        height = round(rgb.shape[0] * width / rgb.shape[1])
        image = Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR)
        rgb = np.asarray(image)
    jpeg = simplejpeg.encode_jpeg(rgb, quality=quality, colorspace="RGB")
    return EncodedFrame(jpeg, rgb.shape[1], rgb.shape[0])
