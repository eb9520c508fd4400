"""Finding the weights, and downloading them with a checksum check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline import config
from pipeline.inference import model_files
from pipeline.inference.model_files import ModelNotFound, fetch, locate, search_dirs

MODEL_DIR = config.load().model.dir  # VAE_MODEL_DIR, as every service reads it


def test_the_shipped_model_is_found_and_intact() -> None:
    path = locate("yolox_nano", MODEL_DIR)
    assert model_files.sha256_of(path) == model_files.CATALOGUE["yolox_nano"].sha256


def test_model_dir_comes_first(tmp_path: Path) -> None:
    (tmp_path / "yolox_nano.onnx").write_bytes(b"x")
    assert locate("yolox_nano", str(tmp_path)) == tmp_path / "yolox_nano.onnx"
    assert search_dirs(str(tmp_path))[0] == tmp_path.resolve()


def test_missing_model_names_every_folder_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_files, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFound) as raised:
        locate("yolox_nano", str(tmp_path / "mine"))
    text = str(raised.value)
    assert str(tmp_path / "mine") in text and str(tmp_path / "models") in text
    assert "make models" in text and "VAE_MODEL_DIR" in text


def test_unknown_model() -> None:
    with pytest.raises(ModelNotFound, match="known models: yolox_nano"):
        locate("resnet9000")


def test_fetch_verifies_the_checksum(tmp_path: Path) -> None:
    source = locate("yolox_nano", MODEL_DIR)
    progress: list[int] = []
    path = fetch(
        "yolox_nano",
        tmp_path / "out",
        urls=[source.as_uri()],
        progress=lambda d, t: progress.append(d),
    )
    assert path.read_bytes() == source.read_bytes()
    assert progress[-1] == source.stat().st_size


def test_fetch_refuses_a_wrong_file_and_tries_the_next_mirror(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not the model")
    good = locate("yolox_nano", MODEL_DIR)
    path = fetch("yolox_nano", tmp_path / "out", urls=[bad.as_uri(), good.as_uri()])
    assert (
        hashlib.sha256(path.read_bytes()).hexdigest() == model_files.CATALOGUE["yolox_nano"].sha256
    )


def test_fetch_keeps_nothing_when_every_mirror_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not the model")
    with pytest.raises(ModelNotFound, match="sha256"):
        fetch("yolox_nano", tmp_path / "out", urls=[bad.as_uri(), (tmp_path / "absent").as_uri()])
    assert list((tmp_path / "out").iterdir()) == []
