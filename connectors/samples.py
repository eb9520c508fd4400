"""The sample media the demo and the tests replay: found on disk, or fetched with a checksum.

Looked for in VAE_MEDIA_DIR, ./media, then ../shared/media (beside the working directory
and beside the checkout); `vae media fetch` downloads into ./media.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline import assets


@dataclass(frozen=True)
class SampleInfo:
    file_name: str
    sha256: str
    size: int
    urls: tuple[str, ...]
    what: str
    licence: str


SAMPLES: dict[str, SampleInfo] = {
    "dog.jpg": SampleInfo(
        "dog.jpg",
        "5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866",
        163_759,
        (
            "https://raw.githubusercontent.com/Megvii-BaseDetection/YOLOX/main/assets/dog.jpg",
            "https://raw.githubusercontent.com/Devon-Scott/YOLOX/02e8414/assets/dog.jpg",
        ),
        "768x576 photo: a dog, a bicycle, a pick-up truck (YOLOX's demo asset)",
        "Apache-2.0 (YOLOX)",
    ),
    "vtest.avi": SampleInfo(
        "vtest.avi",
        "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
        8_131_690,
        ("https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/vtest.avi",),
        "768x576, 10 fps, 795 frames: pedestrians on a campus walkway (OpenCV sample data)",
        "Apache-2.0 AND BSD-3-Clause (OpenCV)",
    ),
}

DEFAULT_CLIP = "vtest.avi"


class SampleNotFound(FileNotFoundError):
    """A sample file is in none of the searched folders."""


def search_dirs() -> list[Path]:
    return assets.search_dirs(os.environ.get("VAE_MEDIA_DIR", ""), "media")


def locate(file_name: str) -> Path:
    """Path of a sample file, or SampleNotFound naming every folder searched."""
    if file_name not in SAMPLES:
        raise SampleNotFound(f"unknown sample {file_name!r}; known: {', '.join(SAMPLES)}")
    dirs = search_dirs()
    found = assets.find(file_name, dirs)
    if found is None:
        looked = "\n  ".join(str(d) for d in dirs)
        raise SampleNotFound(
            f"sample {file_name} not found. Looked in:\n  {looked}\n"
            "Set VAE_MEDIA_DIR to the folder that holds it, or run `make media` to download it."
        )
    return found


def fetch(file_name: str, dest_dir: Path, progress: assets.Progress | None = None) -> Path:
    info = SAMPLES[file_name]
    return assets.download(info.file_name, info.sha256, info.size, info.urls, dest_dir, progress)
