"""Photos: one file, or every image in a folder (sorted), looped by the replay."""

from __future__ import annotations

import io
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image

from connectors.sources.base import IMAGE_SUFFIXES, EncodedFrame, FrameSource, Progress, encode_rgb


@dataclass
class ImageSource(FrameSource):
    """JPEGs are sent as they are unless a width is asked; other formats are encoded."""

    path: Path
    _: KW_ONLY
    width: int = 0
    quality: int = 85

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
                    rgb = np.asarray(image.convert("RGB"))
                frames.append(encode_rgb(rgb, width=self.width, quality=self.quality))
            if progress:
                progress(index + 1, len(files))
        return frames
