"""Frame sources: each yields JPEG-encoded frames, decoded once and cached in memory."""

from connectors.sources.base import EncodedFrame, FrameSource, open_source
from connectors.sources.images import ImageSource
from connectors.sources.video import VideoSource

__all__ = ["EncodedFrame", "FrameSource", "ImageSource", "VideoSource", "open_source"]
