"""`vae bench gating`'s clips and its recall, on real frames of the sample clip."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import simplejpeg

from pipeline.config import SettingsError
from pipeline.inference.detections import Detections
from pipeline.shell.bench.gating import build_clip, recall, static_shares


@pytest.fixture(scope="module")
def moving(media: Path) -> list[npt.NDArray[np.uint8]]:
    with av.open(str(media / "vtest.avi")) as container:
        return [
            f.to_ndarray(format="rgb24")
            for _, f in zip(range(12), container.decode(video=0), strict=False)
        ]


def test_a_clip_holds_its_static_share_of_noisy_stills(
    moving: list[npt.NDArray[np.uint8]],
) -> None:
    jpegs, still = build_clip(moving, frames=40, static_share=0.9, period=20, noise=3.0)
    assert len(jpegs) == len(still) == 40
    assert still == ([False] * 2 + [True] * 18) * 2
    # A still frame is the last moving frame again, with its own noise and encoding.
    held = simplejpeg.decode_jpeg(jpegs[2]).astype(np.float32)
    again = simplejpeg.decode_jpeg(jpegs[3]).astype(np.float32)
    source = moving[1].astype(np.float32)
    assert jpegs[2] != jpegs[3]
    assert np.abs(held - source).mean() < 4 and np.abs(again - source).mean() < 4
    # The moving frames go on through the clip: the second period starts at its 3rd frame.
    third = simplejpeg.decode_jpeg(jpegs[20]).astype(np.float32)
    assert np.abs(third - moving[2].astype(np.float32)).mean() < 2


def test_no_static_share_is_the_clip_itself(moving: list[npt.NDArray[np.uint8]]) -> None:
    jpegs, still = build_clip(moving, frames=12, static_share=0.0, period=100, noise=3.0)
    assert not any(still) and len(jpegs) == 12


def boxes(*rows: tuple[int, float, float, float, float]) -> Detections:
    return Detections(
        np.asarray([r[1:] for r in rows], np.float32).reshape(-1, 4),
        np.full(len(rows), 0.9, np.float32),
        np.asarray([r[0] for r in rows], np.int32),
    )


def test_recall_counts_same_class_boxes_that_overlap() -> None:
    reference = [boxes((0, 0, 0, 10, 10), (2, 20, 20, 40, 40)), boxes((0, 0, 0, 10, 10))]
    got = [boxes((0, 1, 0, 11, 10), (0, 20, 20, 40, 40)), boxes((0, 0, 0, 10, 10))]
    # frame 0: the person matches (IoU 0.82), the car does not (a person there); frame 1: 1/1
    assert recall(reference, got) == pytest.approx(2 / 3)
    assert recall([Detections.empty()], [boxes((0, 0, 0, 1, 1))]) == 1.0


def test_shares_are_percentages() -> None:
    assert static_shares("0,50,90") == [0.0, 0.5, 0.9]
    with pytest.raises(SettingsError):
        static_shares("100")
