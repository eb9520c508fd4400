"""Motion gating on real frames of the sample clip, and a still of it with sensor noise."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import simplejpeg

from pipeline.config import WorkerSettings
from pipeline.worker.gating import (
    LastInferred,
    MotionGate,
    MotionParams,
    changed_share,
    stream_group,
    thumbnail,
)
from tests.sample_clip import sample_frames

FPS = 10.0  # the sample clip's


@pytest.fixture(scope="module")
def clip(media: Path) -> list[npt.NDArray[np.uint8]]:
    """The first 40 frames of vtest.avi (RGB)."""
    return sample_frames(media, 40)


def jpeg(image: npt.NDArray[np.uint8]) -> bytes:
    return simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=85)


def stills(image: npt.NDArray[np.uint8], count: int, seed: int, sigma: float = 4.0) -> list[bytes]:
    """The still as a camera sends it again and again: fresh sensor noise each time,
    re-encoded (seeded, so a test sees the same noise every run)."""
    rng = np.random.default_rng(seed)
    grains = (rng.normal(0.0, sigma, image.shape) for _ in range(count))
    return [jpeg(np.clip(image.astype(np.float32) + g, 0, 255).astype(np.uint8)) for g in grains]


def run(
    gate: MotionGate, frames: list[bytes], stream: str = "cam-1", partition: int = 0
) -> list[str]:
    """Each frame's decision, the frames 1/FPS s apart."""
    return [
        gate.decide(stream, partition, thumbnail(data, gate.params.width), i / FPS).reason
        for i, data in enumerate(frames)
    ]


def test_the_thumbnail_is_a_reduced_grey_decode(dog_jpeg: bytes) -> None:
    grey = thumbnail(dog_jpeg, 160)
    assert grey is not None
    # 768x576 at 1/4 (the smallest DCT scale at least 160 wide) is 192x144; 2x2 cells.
    assert grey.shape == (72, 96)
    assert thumbnail(b"not a jpeg", 160) is None


def test_a_still_with_sensor_noise_is_gated_between_keyframes(
    clip: list[npt.NDArray[np.uint8]],
) -> None:
    gate = MotionGate(MotionParams(keyframe_s=2.0))
    reasons = run(gate, stills(clip[0], 50, seed=1))
    inferred = [i for i, r in enumerate(reasons) if r != "still"]
    assert inferred == [0, 20, 40]  # the first frame, then a keyframe every 2 s (20 frames)
    assert reasons[0] == "first" and reasons[20] == reasons[40] == "keyframe"


def test_a_moving_object_after_a_static_stretch_is_inferred_in_its_first_moving_frame(
    clip: list[npt.NDArray[np.uint8]],
) -> None:
    gate = MotionGate(MotionParams(keyframe_s=10.0))
    still = stills(clip[0], 30, seed=2)
    moving = [jpeg(frame) for frame in clip[1:11]]  # the people walk on
    reasons = run(gate, still + moving)
    assert reasons[0] == "first"
    assert set(reasons[1:30]) == {"still"}
    assert reasons[30:] == ["motion"] * 10  # from the first moving frame on, every frame


def test_every_consecutive_frame_of_the_clip_moves(clip: list[npt.NDArray[np.uint8]]) -> None:
    params = MotionParams()
    thumbs = [thumbnail(jpeg(frame), params.width) for frame in clip]
    shares = [
        changed_share(b, a, params.threshold)
        for a, b in itertools.pairwise(thumbs)
        if a is not None and b is not None
    ]
    assert len(shares) == len(clip) - 1
    assert min(shares) > 2 * params.min_area


def test_state_is_per_stream_and_reset_when_partitions_move(
    clip: list[npt.NDArray[np.uint8]],
) -> None:
    gate = MotionGate(MotionParams(keyframe_s=10.0))
    frames = stills(clip[0], 4, seed=3)
    assert run(gate, frames, "a-1", partition=0) == ["first", "still", "still", "still"]
    assert run(gate, frames, "b-1", partition=1) == ["first", "still", "still", "still"]
    gate.forget([0])  # partition 0 went to another worker
    assert len(gate) == 1
    assert run(gate, frames[:2], "a-1", partition=0) == ["first", "still"]
    assert run(gate, frames[:1], "b-1", partition=1) == ["still"]
    # A stream seen on another partition than before (it moved) starts afresh too.
    assert run(gate, frames[:1], "b-1", partition=5) == ["first"]


def test_off_infers_every_frame(clip: list[npt.NDArray[np.uint8]]) -> None:
    gate = MotionGate(MotionParams(), enabled=False)
    frame = jpeg(clip[0])
    assert run(gate, [frame] * 3) == ["off"] * 3


def test_last_inferred_objects_are_forgotten_with_their_partition() -> None:
    last: LastInferred[list[str]] = LastInferred()
    last.put("a-1", 0, ["person"])
    last.put("b-1", 1, ["car"])
    last.forget([0])
    assert last.get("a-1", []) == []
    assert last.get("b-1", []) == ["car"]


def test_stream_groups() -> None:
    assert stream_group("lobby-3") == "lobby"
    assert stream_group("static90_12") == "static90"
    assert stream_group("cam") == "cam"
    assert stream_group("-x") == "-"


def test_the_worker_sections_settings_are_the_gates_parameters() -> None:
    assert MotionParams.of(WorkerSettings()) == MotionParams()  # the defaults agree
    chosen = WorkerSettings(
        gate_width=320, gate_threshold=9.0, gate_min_area=0.01, gate_alpha=0.5, keyframe_s=7.0
    )
    assert MotionParams.of(chosen) == MotionParams(
        width=320, threshold=9.0, min_area=0.01, alpha=0.5, keyframe_s=7.0
    )
