"""The one base every frame source shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

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
