"""One camera's decoding with PyAV, in its own thread so the event loop never blocks.

Opens the URL (RTSP over TCP; open and read timeouts, so a camera that never answers fails
instead of hanging), decimates to the camera's fps, re-encodes to JPEG (narrowed to
``max_width``) and hands each frame to a callback. A video file is paced at its own rate and
looped. Any failure returns to the caller, which backs off and reopens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import simplejpeg

from connectors.cameras.config import CameraConfig

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
#: a stream clock further than this from the wall clock is re-anchored
MAX_CLOCK_DRIFT_S = 2.0


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One frame to send: the JPEG and its capture time (UNIX microseconds)."""

    jpeg: bytes
    capture_ts_us: int
    width: int
    height: int


class CaptureClock:
    """Capture times from the stream's timestamps: the wall clock at the first frame plus
    ``frame.time`` since it; the receive time where frames carry none or the two drift apart."""

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None  # (stream time, wall time)

    def capture_us(self, stream_time: float | None) -> int:
        now = time.time()
        if stream_time is None:
            return int(now * 1e6)
        if self._anchor is None:
            self._anchor = (stream_time, now)
        wall = self._anchor[1] + (stream_time - self._anchor[0])
        if abs(wall - now) > MAX_CLOCK_DRIFT_S:  # a jump in the stream's clock, or a loop
            self._anchor = (stream_time, now)
            wall = now
        return int(wall * 1e6)


def open_container(camera: CameraConfig) -> Any:
    """The PyAV input for a camera's URL, with the options its kind needs."""
    options: dict[str, str] = {}
    fmt: str | None = None
    if camera.kind == "rtsp":
        options = {"rtsp_transport": "tcp", "timeout": str(int(READ_TIMEOUT_S * 1e6))}
    elif camera.kind == "http":
        options = {"timeout": str(int(READ_TIMEOUT_S * 1e6))}
    elif camera.kind == "v4l2":
        fmt = "video4linux2"
    return av.open(
        camera.url, format=fmt, options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S)
    )


class Decoder:
    """Decode one camera until ``stop`` is set or the stream fails (the exception propagates).

    ``on_open`` is called once the stream is open, ``on_frame`` per kept frame, and
    ``on_decode_error`` per packet that would not decode (the stream goes on).
    """

    def __init__(
        self,
        camera: CameraConfig,
        stop: threading.Event,
        on_open: Callable[[], None],
        on_frame: Callable[[DecodedFrame], None],
        on_decode_error: Callable[[], None],
    ) -> None:
        self.camera = camera
        self.stop = stop
        self.on_open = on_open
        self.on_frame = on_frame
        self.on_decode_error = on_decode_error

    def run_once(self) -> None:
        """Open, decode until the end (a file: loop) or an error; return on ``stop``."""
        with open_container(self.camera) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            self.on_open()
            while not self.stop.is_set():
                self._decode_pass(container, stream)
                if self.camera.kind != "file":
                    raise EOFError("the stream ended")
                container.seek(0)  # a file loops

    def _decode_pass(self, container: Any, stream: Any) -> None:
        period = 1.0 / self.camera.fps
        clock = CaptureClock()
        # MJPEG over HTTP has no timestamps (FFmpeg makes up 25 fps): the receive time it is.
        timed = self.camera.kind != "http"
        pace_start: tuple[float, float] | None = None  # (stream time, monotonic) for files
        next_keep: float | None = None
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.on_decode_error()
                continue
            for frame in frames:
                t = frame.time if timed else None
                now = time.monotonic()
                if self.camera.kind == "file" and t is not None:
                    if pace_start is None:
                        pace_start = (t, now)
                    ahead = (t - pace_start[0]) - (now - pace_start[1])
                    if ahead > 0 and self.stop.wait(ahead):
                        return
                # Decimation on arrival, on a grid of the camera's period (so the mean rate is
                # exact) with a quarter period of slack for jitter; a burst never goes out.
                stamp = time.monotonic()
                if next_keep is not None and stamp < next_keep - period / 4:
                    continue
                next_keep = stamp + period if next_keep is None else next_keep + period
                if next_keep < stamp:  # late by a whole period: back on the grid from now
                    next_keep = stamp + period
                self.on_frame(self._encode(frame, clock.capture_us(t)))

    def _encode(self, frame: Any, capture_us: int) -> DecodedFrame:
        width, height = frame.width, frame.height
        if self.camera.max_width and width > self.camera.max_width:
            height = round(height * self.camera.max_width / width / 2) * 2
            width = self.camera.max_width
        rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
        jpeg = simplejpeg.encode_jpeg(rgb, quality=self.camera.quality, colorspace="RGB")
        return DecodedFrame(jpeg, capture_us, width, height)
