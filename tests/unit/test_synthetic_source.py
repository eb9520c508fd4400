"""synthetic[:WxH] frames: parsed strictly, realistic in size, found through open_source."""

from __future__ import annotations

import pytest
import simplejpeg

from connectors.sources import SyntheticSource, open_source
from connectors.sources.synthetic import parse_synthetic


def test_parse() -> None:
    assert parse_synthetic("synthetic") == (320, 240)
    assert parse_synthetic("synthetic:640x480") == (640, 480)
    assert parse_synthetic("clip.mp4") is None
    assert parse_synthetic("synthetic:640") is None
    with pytest.raises(ValueError, match="outside"):
        parse_synthetic("synthetic:99999x10")


def test_frames_are_jpegs_of_the_asked_size_and_differ() -> None:
    source = open_source("synthetic:320x240", quality=80)
    assert isinstance(source, SyntheticSource)
    frames = source.load()
    assert len(frames) == 30 and len({f.jpeg for f in frames}) == 30
    height, width, _, _ = simplejpeg.decode_jpeg_header(frames[0].jpeg)
    assert (width, height) == (320, 240) == (frames[0].width, frames[0].height)
    kb = sum(len(f.jpeg) for f in frames) / len(frames) / 1024
    assert 8 < kb < 40  # camera-like, around the ~20 KB the gateway benchmark uses
