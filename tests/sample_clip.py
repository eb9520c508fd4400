"""The sample clip's frames as the tests use them (vtest.avi: 768x576 at 10 fps, people
walking past a lamp post), decoded by one PyAV loop rather than a copy in every module."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import simplejpeg

SAMPLE_CLIP = "vtest.avi"

Array = npt.NDArray[np.uint8]


def video_frames(video: Path, indices: Iterable[int], *, fmt: str = "rgb24") -> list[Array]:
    """The frames of ``video`` at ``indices`` (0-based, in the order given), decoding only up
    to the last of them."""
    wanted = list(indices)
    found: dict[int, Array] = {}
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                found[index] = frame.to_ndarray(format=fmt)
            if len(found) == len(set(wanted)):
                break
    missing = sorted(set(wanted) - found.keys())
    if missing:
        raise AssertionError(f"{video.name} has no frame {missing[0]}")
    return [found[i] for i in wanted]


def sample_frames(media: Path, count: int, *, fmt: str = "rgb24") -> list[Array]:
    """The sample clip's first ``count`` frames."""
    return video_frames(media / SAMPLE_CLIP, range(count), fmt=fmt)


def sample_frame(media: Path, index: int, *, fmt: str = "rgb24") -> Array:
    """One frame of the sample clip."""
    return video_frames(media / SAMPLE_CLIP, [index], fmt=fmt)[0]


def sample_jpeg(media: Path, index: int, quality: int = 95) -> bytes:
    """One frame of the sample clip as a JPEG, encoded as MODELS.md's reference detections
    were made (PyAV's RGB to BGR, quality 95)."""
    bgr = sample_frame(media, index, fmt="bgr24")
    return bytes(simplejpeg.encode_jpeg(bgr, quality=quality, colorspace="BGR"))
