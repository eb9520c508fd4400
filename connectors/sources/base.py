"""The one base every frame source shares, and how a path picks its source."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def open_source(
    path: str, *, width: int = 0, quality: int = 85, max_frames: int = 0
) -> FrameSource:
    """A video file, a photo, a folder of photos or ``synthetic[:WxH]``.

    FileNotFoundError names the path when it is none of these.
    """
    from connectors.sources.images import ImageSource
    from connectors.sources.synthetic import SyntheticSource, parse_synthetic
    from connectors.sources.video import VideoSource

    size = parse_synthetic(path)
    if size is not None:
        return SyntheticSource(*size, quality=quality)

    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if target.is_dir() or target.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(target, width=width, quality=quality)
    return VideoSource(target, width=width, quality=quality, max_frames=max_frames)
