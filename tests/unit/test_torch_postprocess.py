"""Candidate selection on the model's device equals the NumPy path, row for row."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import config
from pipeline.inference.backends.base import infer_host
from pipeline.inference.backends.factory import Candidate, load_candidate
from pipeline.inference.postprocess.yolox import Candidates, select_candidates
from pipeline.inference.preprocess.batch import CpuPreparer

torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")

from pipeline.inference.postprocess.torch import select_candidates_torch  # noqa: E402

# VAE_MODEL_DIR and the rest of VAE_MODEL_*, as every service reads them.
MODEL = config.load().model


def as_rows(candidates: Candidates) -> list[tuple[int, int, float, tuple[float, ...]]]:
    rows = zip(
        candidates.image.tolist(),
        candidates.class_id.tolist(),
        candidates.score.tolist(),
        candidates.box.tolist(),
        strict=True,
    )
    return sorted((i, c, s, tuple(b)) for i, c, s, b in rows)


def test_real_output_gives_the_same_candidates(dog_jpeg: bytes) -> None:
    backend = load_candidate(Candidate("onnxruntime", "cpu"), MODEL, 2, "fp32")
    prepared = CpuPreparer(backend.input_size).prepare([dog_jpeg, dog_jpeg])
    raw = infer_host(backend, prepared.tensor)
    expected = as_rows(select_candidates(raw, (416, 416), 0.3))
    got = as_rows(select_candidates_torch(torch.from_numpy(raw), (416, 416), 0.3))
    assert len(got) == len(expected) > 8
    for (gi, gc, gs, gb), (ei, ec, es, eb) in zip(got, expected, strict=True):
        assert (gi, gc) == (ei, ec)
        assert gs == pytest.approx(es, abs=1e-6)
        np.testing.assert_allclose(gb, eb, atol=1e-3)


def test_nothing_above_the_threshold() -> None:
    raw = torch.zeros((2, 3549, 85))
    candidates = select_candidates_torch(raw, (416, 416), 0.3)
    assert candidates.image.size == 0 and candidates.box.shape == (0, 4)


def test_wrong_anchor_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="anchors"):
        select_candidates_torch(torch.zeros((1, 100, 85)), (416, 416), 0.3)
