"""Frame sources: each yields JPEG-encoded frames, decoded once and cached in memory.

``open_source`` picks the source for a path; it lives here, above the concrete sources,
so that the base they share imports none of them.
"""

from __future__ import annotations

from pathlib import Path

from connectors.sources.base import IMAGE_SUFFIXES, EncodedFrame, FrameSource
from connectors.sources.images import ImageSource
from connectors.sources.synthetic import SyntheticSource, parse_synthetic
from connectors.sources.video import VideoSource

__all__ = [
    "EncodedFrame",
    "FrameSource",
    "ImageSource",
    "SyntheticSource",
    "VideoSource",
    "open_source",
]


def open_source(
    path: str, *, width: int = 0, quality: int = 85, max_frames: int = 0
) -> FrameSource:
    """A video file, a photo, a folder of photos or ``synthetic[:WxH]``.

    FileNotFoundError names the path when it is none of these.
    """
    size = parse_synthetic(path)
    if size is not None:
        return SyntheticSource(*size, quality=quality)

    target = Path(path)
    if not target.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if target.is_dir() or target.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(target, width=width, quality=quality)
    return VideoSource(target, width=width, quality=quality, max_frames=max_frames)
