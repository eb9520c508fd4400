"""Where model weights come from: a search path on disk, or a checked download.

Weights are never committed. The engine looks in VAE_MODEL_DIR, then ./models, then
../shared/models (beside the checkout); `vae models fetch` (`make models`) downloads
them into ./models and refuses any file whose sha256 differs from the catalogue's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import assets
from pipeline.assets import ChecksumMismatch

__all__ = ["CATALOGUE", "ChecksumMismatch", "ModelInfo", "ModelNotFound", "fetch", "locate"]

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ModelInfo:
    """A detector the engine knows how to run and where to fetch it."""

    name: str
    sha256: str
    size: int
    input_size: tuple[int, int]  # (height, width)
    urls: tuple[str, ...]
    licence: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.onnx"


CATALOGUE: dict[str, ModelInfo] = {
    "yolox_nano": ModelInfo(
        name="yolox_nano",
        sha256="4903c9058f6e2553834e9905be1ae5d67e262cb6321964dbc57a49edc6fa10da",
        size=3_659_407,
        input_size=(416, 416),
        urls=(
            "https://raw.githubusercontent.com/skpawar1305/rs_yolox/"
            "18ff8bc330b8c742869254081d8f4838deacf251/weights/yolox_nano.onnx",
            "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx",
        ),
        licence="Apache-2.0 (YOLOX, Megvii)",
    ),
}


class ModelNotFound(FileNotFoundError):
    """No file for the model in any searched folder."""


def model_info(name: str) -> ModelInfo:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ModelNotFound(
            f"unknown model {name!r}; known models: {', '.join(sorted(CATALOGUE))}"
        ) from None


def search_dirs(model_dir: str = "") -> list[Path]:
    """The folders searched, in order, without duplicates."""
    return assets.search_dirs(model_dir, "models", REPO_ROOT)


def locate(name: str, model_dir: str = "") -> Path:
    """Path of ``<name>.onnx`` in the first searched folder that has it."""
    info = model_info(name)
    dirs = search_dirs(model_dir)
    found = assets.find(info.file_name, dirs)
    if found is not None:
        return found
    looked = "\n  ".join(str(d) for d in dirs)
    raise ModelNotFound(
        f"model file {info.file_name} not found. Looked in:\n  {looked}\n"
        "Set VAE_MODEL_DIR to the folder that holds it, or run `make models` to download it."
    )


sha256_of = assets.sha256_of


def fetch(
    name: str,
    dest_dir: Path,
    urls: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download a model into ``dest_dir`` and verify its sha256; keep an existing good file.

    Tries each mirror in turn; a file with the wrong checksum is deleted, never kept.
    """
    info = model_info(name)
    try:
        return assets.download(
            info.file_name, info.sha256, info.size, urls or info.urls, dest_dir, progress
        )
    except assets.DownloadFailed as exc:
        raise ModelNotFound(str(exc)) from None
