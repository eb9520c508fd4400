"""TensorRT engine cache: the file name changes with anything that invalidates an engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.inference.backends.engine_cache import (
    default_cache_dir,
    engine_file_name,
    load_or_build,
)

BASE = {
    "model_name": "yolox_nano",
    "model_sha256": "4903c9058f6e2553834e9905be1ae5d67e262cb6321964dbc57a49edc6fa10da",
    "trt_version": "11.4.0.106",
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "precision": "fp16",
    "max_batch": 64,
    "input_size": (416, 416),
}


def test_name_is_readable_and_filesystem_safe() -> None:
    name = engine_file_name(**BASE)  # type: ignore[arg-type]
    assert (
        name
        == "yolox_nano-4903c9058f6e2553-trt11.4.0.106-nvidia-h100-80gb-hbm3-fp16-b64-416x416.engine"
    )


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("model_sha256", "0" * 64),
        ("trt_version", "10.16.1.11"),
        ("gpu_name", "NVIDIA L4"),
        ("precision", "fp32"),
        ("max_batch", 32),
        ("input_size", (640, 640)),
    ],
)
def test_every_key_part_changes_the_name(field: str, other: object) -> None:
    assert engine_file_name(**{**BASE, field: other}) != engine_file_name(**BASE)  # type: ignore[arg-type]


def test_build_once_then_load(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "model.engine"
    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return b"serialized engine"

    assert load_or_build(path, build) == (b"serialized engine", True)
    assert load_or_build(path, build) == (b"serialized engine", False)
    assert len(builds) == 1
    assert [p.name for p in path.parent.iterdir()] == ["model.engine"]  # no temp files left


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "model.engine"

    def build() -> bytes:
        raise RuntimeError("builder failed")

    with pytest.raises(RuntimeError):
        load_or_build(path, build)
    assert not path.exists()


def test_default_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "vae" / "engines"
