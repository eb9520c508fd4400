"""`vae replay`: real footage pushed to the gateway as N live camera streams.

Each stream is one WebSocket, paced at its fps from a start time jittered across one
frame period (no thundering herd), starting at a different point of the clip, with the
VAE1 envelope carrying a per-stream frame number and the capture time. Like a camera it
never bursts to catch up: a missed slot is skipped. Each stream's frames go through a
`ResendingClient`: kept until acked, resent after a reconnect (jittered backoff), from a
bounded buffer (`--replay-buffer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from dataclasses import dataclass, field
from typing import ClassVar

from rich.progress import Progress as RichProgress
from websockets.exceptions import InvalidURI

from client.resending import ResendingClient, ResendStats
from connectors.sources import EncodedFrame, open_source
from pipeline.config import fps_option, gateway_option, prefix_option, quality_option, setting

log = logging.getLogger(__name__)

DRAIN_S = 10.0  # at the end of a run, how long unacked frames may still take


@dataclass(frozen=True)
class ReplayOptions:
    """`vae replay`: real footage as N live streams."""

    SECTION: ClassVar[str] = "replay"

    source: str = setting(
        "",
        "Video file (any format PyAV reads), photo, or folder of photos.",
        positional=True,
        required=True,
    )
    streams: int = setting(1, "Number of streams.")
    fps: float = fps_option(10.0)
    duration: float = setting(0.0, "Seconds to run (0: forever).")
    gateway: str = gateway_option()
    prefix: str = prefix_option("replay")
    width: int = setting(0, "Resize frames to this width (0: keep).")
    quality: int = quality_option(85)
    max_frames: int = setting(0, "Load at most this many frames (0: all).")
    buffer: int = setting(
        256,
        "Frames each stream keeps until the gateway acks them, resent after a reconnect; "
        "when full the oldest are dropped (and counted).",
    )


@dataclass
class ReplayStats:
    """Counts across every stream: the slots skipped, and what the resending clients did."""

    skipped_slots: int = 0
    clients: list[ResendingClient] = field(default_factory=list)

    def frames(self) -> ResendStats:
        """The clients' counts summed, now."""
        total = ResendStats()
        for client in self.clients:
            total.add(client.stats)
        return total


def load_frames(source: str, width: int, quality: int, max_frames: int = 0) -> list[EncodedFrame]:
    """Decode the source once (with a progress bar) into JPEG frames in memory."""
    frame_source = open_source(source, width=width, quality=quality, max_frames=max_frames)
    with RichProgress(transient=True) as bar:
        task = bar.add_task(f"loading {frame_source.description}", total=None)
        frames = frame_source.load(
            lambda done, total: bar.update(task, completed=done, total=total)
        )
    size = sum(len(f.jpeg) for f in frames) / len(frames)
    log.info(
        "loaded %d frames of %dx%d from %s (%.1f KB per JPEG)",
        len(frames),
        frames[0].width,
        frames[0].height,
        frame_source.description,
        size / 1024,
    )
    return frames


async def replay_stream(
    gateway: str,
    stream_id: str,
    frames: list[EncodedFrame],
    first: int,
    fps: float,
    deadline: float,
    stats: ReplayStats,
    buffer_frames: int = 256,
) -> None:
    """Hand frames of one stream to a resending client until the deadline (monotonic).

    The client keeps each frame until acked and resends across reconnects; the pacing here
    is the camera's own, whatever the socket does.
    """
    period = 1.0 / fps
    frame_id = 0
    next_slot = time.monotonic() + random.uniform(0, period)
    cam = ResendingClient(gateway, stream_id, buffer_frames=buffer_frames)
    stats.clients.append(cam)
    async with cam:
        while (now := time.monotonic()) < deadline:
            if next_slot > now:
                await asyncio.sleep(next_slot - now)
            elif now - next_slot > period:  # late by a whole frame: skip slots
                missed = int((now - next_slot) / period)
                stats.skipped_slots += missed
                next_slot += missed * period
            frame = frames[(first + frame_id) % len(frames)]
            cam.put(frame.jpeg, frame_id)
            frame_id += 1
            next_slot += period
        # The run is over: give the frames still unacked a moment to be acked.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await cam.drain()


async def replay(
    gateway: str,
    frames: list[EncodedFrame],
    streams: int,
    fps: float,
    duration: float,
    prefix: str,
    report_every: float = 5.0,
    buffer_frames: int = 256,
) -> ReplayStats:
    """Run every stream until the duration ends or the task is cancelled."""
    stats = ReplayStats()
    deadline = time.monotonic() + (duration if duration > 0 else float("inf"))
    tasks = [
        asyncio.create_task(
            replay_stream(
                gateway,
                f"{prefix}-{i}",
                frames,
                i * len(frames) // streams,
                fps,
                deadline,
                stats,
                buffer_frames,
            )
        )
        for i in range(streams)
    ]
    started = time.monotonic()
    try:
        while not all(t.done() for t in tasks):
            await asyncio.wait(tasks, timeout=report_every)
            elapsed = time.monotonic() - started
            f = stats.frames()
            log.info(
                "replay: %d streams, %d frames sent (%.1f/s), %d acked, %d resent, %d unacked, "
                "%d dropped from full buffers, %d refused %s, %d reconnects",
                streams,
                f.sent,
                f.sent / max(elapsed, 1e-9),
                f.acked,
                f.resent,
                sum(c.unacked for c in stats.clients),
                f.dropped_oldest,
                sum(f.refused.values()),
                f.refused or "",
                f.reconnects,
            )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def run_replay(options: ReplayOptions, default_gateway: str) -> int:
    """Entry point of `vae replay`."""
    o = options
    gateway = o.gateway or default_gateway
    if o.streams < 1 or o.fps <= 0:
        raise ValueError("--streams must be at least 1 and --fps above 0")
    if not gateway.startswith(("ws://", "wss://")):
        raise InvalidURI(gateway, "the gateway URL must start with ws:// or wss://")
    frames = load_frames(o.source, o.width, o.quality, o.max_frames)

    async def main() -> None:
        task = asyncio.create_task(
            replay(gateway, frames, o.streams, o.fps, o.duration, o.prefix, buffer_frames=o.buffer)
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0
