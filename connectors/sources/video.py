"""Video files (and anything else FFmpeg opens: RTSP/HTTP URLs too) decoded with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import simplejpeg
from PIL import Image

from connectors.sources.base import EncodedFrame, FrameSource, Progress


class VideoSource(FrameSource):
    """Every frame decoded once and JPEG-encoded, optionally resized to ``width``."""

    def __init__(self, path: Path | str, *, width: int = 0, quality: int = 85, max_frames: int = 0):
        self.path = str(path)
        self.width = width
        self.quality = quality
        self.max_frames = max_frames
        self.native_fps = None

    @property
    def description(self) -> str:
        return f"video {self.path}"

    def load(self, progress: Progress | None = None) -> list[EncodedFrame]:
        frames: list[EncodedFrame] = []
        try:
            container = av.open(self.path)
        except av.error.FFmpegError as exc:
            raise FileNotFoundError(f"cannot open {self.path} as video: {exc}") from exc
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            total = stream.frames or None
            if self.max_frames:
                total = min(total or self.max_frames, self.max_frames)
            if stream.average_rate:
                self.native_fps = float(stream.average_rate)
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                if self.width and rgb.shape[1] != self.width:
                    height = round(rgb.shape[0] * self.width / rgb.shape[1])
                    image = Image.fromarray(rgb).resize(
                        (self.width, height), Image.Resampling.BILINEAR
                    )
                    rgb = np.asarray(image)
                jpeg = simplejpeg.encode_jpeg(rgb, quality=self.quality, colorspace="RGB")
                frames.append(EncodedFrame(jpeg, rgb.shape[1], rgb.shape[0]))
                if progress:
                    progress(len(frames), total)
                if self.max_frames and len(frames) >= self.max_frames:
                    break
        if not frames:
            raise FileNotFoundError(f"{self.path} has no decodable video frames")
        return frames
