"""Frame sources: each yields JPEG-encoded frames, decoded once and cached in memory."""

from connectors.sources.base import EncodedFrame, FrameSource, open_source
from connectors.sources.images import ImageSource
from connectors.sources.synthetic import SyntheticSource
from connectors.sources.video import VideoSource

__all__ = [
    "EncodedFrame",
    "FrameSource",
    "ImageSource",
    "SyntheticSource",
    "VideoSource",
    "open_source",
]
