"""Where model weights come from: a search path on disk, or a checked download.

Weights are never committed. The engine looks in VAE_MODEL_DIR, then ./models, then
../shared/models (beside the checkout); `vae models fetch` (`make models`) downloads
them into ./models and refuses any file whose sha256 differs from the catalogue's.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


class ChecksumMismatch(ValueError):
    """A downloaded file is not the one the catalogue names."""


def model_info(name: str) -> ModelInfo:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ModelNotFound(
            f"unknown model {name!r}; known models: {', '.join(sorted(CATALOGUE))}"
        ) from None


def search_dirs(model_dir: str = "") -> list[Path]:
    """The folders searched, in order, without duplicates."""
    candidates = []
    if model_dir:
        candidates.append(Path(model_dir).expanduser())
    candidates += [
        Path.cwd() / "models",
        Path.cwd().parent / "shared" / "models",
        REPO_ROOT / "models",
        REPO_ROOT.parent / "shared" / "models",
    ]
    seen: list[Path] = []
    for path in candidates:
        resolved = path.resolve()
        if resolved not in seen:
            seen.append(resolved)
    return seen


def locate(name: str, model_dir: str = "") -> Path:
    """Path of ``<name>.onnx`` in the first searched folder that has it."""
    info = model_info(name)
    dirs = search_dirs(model_dir)
    for folder in dirs:
        path = folder / info.file_name
        if path.is_file():
            return path
    looked = "\n  ".join(str(d) for d in dirs)
    raise ModelNotFound(
        f"model file {info.file_name} not found. Looked in:\n  {looked}\n"
        "Set VAE_MODEL_DIR to the folder that holds it, or run `make models` to download it."
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / info.file_name
    if target.is_file() and sha256_of(target) == info.sha256:
        return target
    errors = []
    for url in urls or info.urls:
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{info.file_name}.")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or info.size)
                done = 0
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            actual = sha256_of(tmp)
            if actual != info.sha256:
                raise ChecksumMismatch(f"sha256 {actual}, expected {info.sha256}")
            tmp.replace(target)
            return target
        except (OSError, ChecksumMismatch) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise ModelNotFound(f"could not fetch {info.file_name}:\n  " + "\n  ".join(errors))
