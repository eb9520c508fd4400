"""Video files (and anything else FFmpeg opens: RTSP/HTTP URLs too) decoded with PyAV."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import av
import numpy as np

from connectors.sources.base import EncodedFrame, FrameSource, Progress, encode_rgb


@dataclass
class VideoSource(FrameSource):
    """Every frame decoded once and JPEG-encoded, optionally resized to ``width``."""

    path: Path | str
    _: KW_ONLY
    width: int = 0
    quality: int = 85
    max_frames: int = 0

    @property
    def description(self) -> str:
        return f"video {self.path}"

    def load(self, progress: Progress | None = None) -> list[EncodedFrame]:
        frames: list[EncodedFrame] = []
        try:
            container = av.open(str(self.path))
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
                rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)  # no copy
                frames.append(encode_rgb(rgb, width=self.width, quality=self.quality))
                if progress:
                    progress(len(frames), total)
                if self.max_frames and len(frames) >= self.max_frames:
                    break
        if not frames:
            raise FileNotFoundError(f"{self.path} has no decodable video frames")
        return frames
