"""Photos: one file, or every image in a folder (sorted), looped by the replay."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image

from connectors.sources.base import IMAGE_SUFFIXES, EncodedFrame, FrameSource, Progress


class ImageSource(FrameSource):
    """JPEGs are sent as they are unless a width is asked; other formats are encoded."""

    def __init__(self, path: Path, *, width: int = 0, quality: int = 85) -> None:
        self.path = path
        self.width = width
        self.quality = quality

    @property
    def description(self) -> str:
        return f"photos from {self.path}"

    def files(self) -> list[Path]:
        if self.path.is_dir():
            found = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(
                    f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {self.path}"
                )
            return found
        return [self.path]

    def load(self, progress: Progress | None = None) -> list[EncodedFrame]:
        files = self.files()
        frames = []
        for index, path in enumerate(files):
            data = path.read_bytes()
            if path.suffix.lower() in (".jpg", ".jpeg") and not self.width:
                height, width, _, _ = simplejpeg.decode_jpeg_header(data)
                frames.append(EncodedFrame(data, width, height))
            else:
                with Image.open(io.BytesIO(data)) as image:
                    rgb = image.convert("RGB")
                    if self.width and rgb.width != self.width:
                        height = round(rgb.height * self.width / rgb.width)
                        rgb = rgb.resize((self.width, height), Image.Resampling.BILINEAR)
                    array = np.asarray(rgb)
                jpeg = simplejpeg.encode_jpeg(array, quality=self.quality, colorspace="RGB")
                frames.append(EncodedFrame(jpeg, array.shape[1], array.shape[0]))
            if progress:
                progress(index + 1, len(files))
        return frames
