"""Serialized TensorRT engines on disk, keyed by everything that makes one engine differ.

Building a TensorRT engine takes minutes; loading one takes a second. An engine is only
valid for the exact model bytes, TensorRT version and GPU model it was built with (and
for the precision and batch profile it was built for), so all of these are in the file
name: a change of any of them builds a new engine instead of loading a wrong one.
Pure file logic, unit-tested without TensorRT.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/vae/engines, else ~/.cache/vae/engines."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vae" / "engines"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-").lower() or "unknown"


def engine_file_name(
    model_name: str,
    model_sha256: str,
    trt_version: str,
    gpu_name: str,
    precision: str,
    max_batch: int,
    input_size: tuple[int, int],
) -> str:
    """e.g. yolox_nano-4903c9058f6e2553-trt11.4.0.106-nvidia-h100-fp16-b64-416x416.engine"""
    return (
        f"{_slug(model_name)}-{model_sha256[:16]}-trt{_slug(trt_version)}-{_slug(gpu_name)}"
        f"-{precision}-b{max_batch}-{input_size[0]}x{input_size[1]}.engine"
    )


def load_or_build(path: Path, build: Callable[[], bytes]) -> tuple[bytes, bool]:
    """The cached bytes at ``path``, or ``build()``'s, written atomically; (bytes, built)."""
    if path.is_file() and path.stat().st_size > 0:
        return path.read_bytes(), False
    data = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        Path(tmp).replace(path)  # atomic: a concurrent reader sees all or nothing
    finally:
        Path(tmp).unlink(missing_ok=True)
    return data, True
