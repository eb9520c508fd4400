"""What a loadgen run does, declared once: `vae loadgen`'s flags, their VAE_LOADGEN_* variables
and README rows, and the options `vae bench gateway` borrows for its rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.config import fps_option, gateway_option, prefix_option, quality_option, setting

EXIT_OK, EXIT_ERRORS, EXIT_UNREACHABLE = 0, 1, 2

# The options that describe the frames and the pace, shared with `vae bench gateway`.
FRAME_OPTIONS = ("source", "width", "quality", "max_frames")
PACE_OPTIONS = ("fps", "duration", "procs")


class LoadgenError(RuntimeError):
    """A run that could not happen or went wrong; the message says what to do."""

    def __init__(self, message: str, exit_code: int = EXIT_UNREACHABLE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LoadgenOptions:
    """`vae loadgen`: simulated cameras against a gateway."""

    SECTION: ClassVar[str] = "loadgen"

    gateway: str = gateway_option()
    streams: int = setting(100, "Streams, one ingest socket each.")
    fps: float = fps_option(1.0)
    duration: float = setting(60.0, "Seconds of sending.")
    source: str = setting(
        "",
        "Video file, photo, folder of photos, or synthetic[:WxH] (default: the sample clip if "
        "found, else synthetic:320x240).",
    )
    width: int = setting(320, "Resize frames to this width (320: about 20 KB per frame).")
    quality: int = quality_option(80)
    max_frames: int = setting(200, "Distinct frames decoded and cached.")
    subscribe: bool = setting(
        False, "Also follow detections to measure end-to-end latency (needs workers running)."
    )
    procs: int = setting(1, "Processes to spread the streams over.")
    drain: float = setting(10.0, "Seconds after the last send to wait for acks and detections.")
    prefix: str = prefix_option("loadgen")
    connect_concurrency: int = setting(200, "Handshakes in flight at once, over all processes.")
    connect_timeout: float = setting(30.0, "Seconds per handshake.")
    max_error_rate: float = setting(
        0.001,
        "Exit 1 when refused + lost (+ undetected with --subscribe) frames, or failed "
        "connections, exceed this fraction.",
    )
    report: str = setting("", "Write the JSON report here.")
    plot: str = setting("", "Write a PNG of latency and throughput here.")
    live: bool = setting(True, "Live progress display (--no-live: a line every 5 s, for logs).")

    def validate(self) -> None:
        if self.streams < 1:
            raise LoadgenError("--streams must be at least 1")
        if self.fps <= 0 or self.duration <= 0:
            raise LoadgenError("--fps and --duration must be above 0")
        if not 1 <= self.procs <= self.streams:
            raise LoadgenError("--procs must be between 1 and --streams")
        if not 0 <= self.max_error_rate <= 1:
            raise LoadgenError("--max-error-rate is a fraction between 0 and 1")
        if self.gateway and not self.gateway.startswith(("ws://", "wss://")):
            raise LoadgenError(f"gateway URL {self.gateway!r} must start with ws:// or wss://")
