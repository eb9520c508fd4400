"""An event's clip: a stream's stored JPEG frames encoded as H.264 in MP4 with PyAV.

Browsers play H.264 in MP4 (``yuv420p``); ``+faststart`` puts the index first, so a player
starts before the whole file arrived. Each frame keeps its capture time (time base 1/90000),
so a stream sent at a varying rate plays at its own pace. The encoder is the first of
H264_ENCODERS this PyAV build can open: PyPI's av wheels bring libx264; a build without it
may have Cisco's libopenh264.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import simplejpeg

log = logging.getLogger(__name__)

H264_ENCODERS = ("libx264", "libopenh264")
TIME_BASE = Fraction(1, 90_000)
# libx264: "superfast" encodes a 720p frame in about 20 ms on one core of the development
# machine, a third of "veryfast"'s time, for files about twice the size.
_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "superfast", "crf": "23"},
    "libopenh264": {},
}
_OPENH264_BIT_RATE = 2_000_000


class NoEncoder(RuntimeError):
    """This PyAV build has none of H264_ENCODERS."""


@dataclass(frozen=True, slots=True)
class Clip:
    data: bytes  # the MP4 file
    frames: int
    first_us: int  # capture time of its first frame
    last_us: int  # of its last
    width: int
    height: int
    encoder: str


def _opens(name: str) -> bool:
    try:
        context: Any = av.CodecContext.create(name, "w")
        context.width, context.height, context.pix_fmt = 64, 64, "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
    except Exception:  # unknown to this build, or its library cannot be loaded
        return False
    return True


@functools.cache
def h264_encoder() -> str | None:
    """The H.264 encoder clips use here, or None."""
    for name in H264_ENCODERS:
        if _opens(name):
            return name
    return None


def output_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The clip's size for frames of ``width`` x ``height``: at most ``max_width`` wide
    (0: any), each side even (yuv420p halves the colour planes)."""
    if max_width and width > max_width:
        height, width = round(height * max_width / width), max_width
    return max(2, width - width % 2), max(2, height - height % 2)


def encode_mp4(frames: Iterable[tuple[int, bytes]], *, max_width: int, deadline: float) -> Clip:
    """Encode (capture_ts_us, JPEG) pairs, in order, into an MP4; TimeoutError once
    ``deadline`` (time.monotonic()) passes. A frame not later than the one before is left
    out (a player needs increasing times). The size is the first frame's, scaled down to
    ``max_width``; every other frame is scaled to it."""
    encoder = h264_encoder()
    if encoder is None:
        raise NoEncoder(f"this PyAV build has no H.264 encoder ({', '.join(H264_ENCODERS)})")
    with tempfile.TemporaryDirectory(prefix="vae-clip-") as folder:
        # faststart rewrites the file after the fact, by name: it needs a real file.
        path = Path(folder) / "clip.mp4"
        count, first_us, last_us, size = _encode(path, encoder, frames, max_width, deadline)
        return Clip(path.read_bytes(), count, first_us, last_us, size[0], size[1], encoder)


def _encode(
    path: Path,
    encoder: str,
    frames: Iterable[tuple[int, bytes]],
    max_width: int,
    deadline: float,
) -> tuple[int, int, int, tuple[int, int]]:
    count, first_us, last_us, last_pts = 0, 0, 0, -1
    size = (0, 0)
    stream: Any = None
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        for capture_us, jpeg in frames:
            if time.monotonic() > deadline:
                raise TimeoutError(f"clip: {count} frames encoded when the time ran out")
            if stream is None:
                height, width, _, _ = simplejpeg.decode_jpeg_header(jpeg)
                size = output_size(width, height, max_width)
                stream = _add_stream(output, encoder, size)
                first_us = capture_us
            pts = round((capture_us - first_us) * TIME_BASE.denominator / 1_000_000)
            if pts <= last_pts:
                continue
            rgb = simplejpeg.decode_jpeg(
                jpeg, colorspace="RGB", min_width=size[0], min_height=size[1]
            )
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            frame.pts, frame.time_base = pts, TIME_BASE
            for packet in stream.encode(frame):
                output.mux(packet)
            count, last_us, last_pts = count + 1, capture_us, pts
        if stream is None:
            raise ValueError("a clip needs at least one frame")
        for packet in stream.encode(None):
            output.mux(packet)
    return count, first_us, last_us, size


def _add_stream(output: Any, encoder: str, size: tuple[int, int]) -> Any:
    stream = output.add_stream(encoder, options=_OPTIONS.get(encoder, {}))
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.time_base = TIME_BASE
    stream.codec_context.time_base = TIME_BASE
    if encoder == "libopenh264":
        stream.bit_rate = _OPENH264_BIT_RATE
    return stream
