"""One loadgen process: connect its share of the streams, pace them, count every frame.

Every stream is one ingest socket opened with ``?ack=1``. Sending follows a fixed
schedule (a slot every 1/fps s from a jittered start); like a camera, a stream never
bursts to catch up: a slot missed by more than a period is skipped and counted. Each
frame carries the VAE1 envelope (frame id, capture time). Acks and refusals are matched
to frames by id; frames neither acked nor refused at the end of the drain are lost. When
the gateway drops a socket, the stream reconnects with jittered backoff and resends its
unanswered frames (counted as `resent`), as a camera with `ResendingClient` does.
With ``subscribe`` one socket per process follows the detections of its streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from client.credentials import auth_headers
from loadgen.stats import ProcessStats
from pipeline.protocol.envelope import build_envelope
from pipeline.runtime import tune_gc_for_many_connections

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5
RECONNECT_MAX_S = 5.0  # the longest backoff between reconnect attempts
GC_YOUNG_THRESHOLD = 50_000


@dataclass(frozen=True)
class SessionSpec:
    """What one process runs (picklable: it crosses to a spawned process)."""

    index: int
    gateway: str
    stream_ids: tuple[str, ...]
    frames: tuple[bytes, ...]
    fps: float
    duration: float
    drain: float
    subscribe: bool
    connect_concurrency: int
    connect_timeout: float


class _Clock:
    """Monotonic time relative to the shared wall-clock start (seconds into the run)."""

    def __init__(self) -> None:
        self.start = float("inf")  # until the parent says go, every time is "before the run"

    def begin(self, start_at: float) -> None:
        self.start = time.monotonic() + (start_at - time.time())

    def now(self) -> float:
        return time.monotonic() - self.start

    def second(self) -> int:
        return int(self.now()) if self.now() >= 0 else -1


class Stream:
    """One simulated camera: a socket, its schedule and its frames awaiting an answer."""

    def __init__(self, stream_id: str, first_frame: int) -> None:
        self.stream_id = stream_id
        self.first_frame = first_frame
        self.ws: ClientConnection | None = None
        self.unanswered: dict[int, float] = {}  # frame id -> monotonic send time
        self.captured: dict[int, int] = {}  # frame id -> capture time (us), until answered
        self.next_frame = 0
        self.slot: float | None = None  # seconds into the run of the next frame's slot
        self.awaiting_detections: set[int] = set()  # acked, no detections yet
        self.detected_before_ack: set[int] = set()  # rare: detections overtook the ack
        self.closed = False
        self.finished_sending = False
        self.settled = asyncio.Event()  # sending is over and every frame got an answer

    def check_settled(self) -> None:
        if self.finished_sending and (not self.unanswered or self.closed):
            self.settled.set()


class Session:
    def __init__(self, spec: SessionSpec) -> None:
        self.spec = spec
        self.headers = auth_headers()  # VAE_AUTH_TOKEN or the token file
        self.stats = ProcessStats()
        self.clock = _Clock()
        self._gate = asyncio.Semaphore(spec.connect_concurrency)
        n = max(1, len(spec.stream_ids))
        self.streams = {
            sid: Stream(sid, i * len(spec.frames) // n) for i, sid in enumerate(spec.stream_ids)
        }

    # -- connecting --------------------------------------------------------------------------

    async def _connect(self, stream: Stream, gate: asyncio.Semaphore, again: bool = False) -> None:
        url = f"{self.spec.gateway.rstrip('/')}/v1/ingest/{stream.stream_id}?ack=1"
        async with gate:
            try:
                ws = await connect(
                    url,
                    max_size=2**20,
                    compression=None,
                    open_timeout=self.spec.connect_timeout,
                    ping_interval=None,  # the gateway pings; 10,000 client pingers would cost CPU
                    close_timeout=2,
                    additional_headers=self.headers,
                )
                hello = json.loads(await asyncio.wait_for(ws.recv(), self.spec.connect_timeout))
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed) as exc:
                self.stats.connect_failures[type(exc).__name__] += 1
                log.debug("%s: connect failed: %s", stream.stream_id, exc)
                return
            if hello.get("type") != "hello":
                self.stats.connect_failures[f"refused:{hello.get('code', '?')}"] += 1
                await ws.close()
                return
        stream.ws = ws
        if again:
            self.stats.reconnects += 1
        else:
            self.stats.connected += 1

    async def _reconnect(self, stream: Stream, end: float) -> bool:
        """After a drop: connect again with jittered exponential backoff, until ``end``."""
        stream.ws = None
        attempt = 0
        while stream.ws is None and self.clock.now() < end:
            await asyncio.sleep(random.uniform(0, min(RECONNECT_MAX_S, 0.2 * 2**attempt)))
            attempt += 1
            await self._connect(stream, self._gate, again=True)
        if stream.ws is None:
            return False
        stream.closed = False
        stream.settled = asyncio.Event()
        return True

    async def _resend(self, stream: Stream) -> None:
        """Send again, oldest first, every frame the dropped socket left unanswered."""
        ws = stream.ws
        assert ws is not None
        frames = self.spec.frames
        for frame_id in sorted(stream.unanswered):
            jpeg = frames[(stream.first_frame + frame_id) % len(frames)]
            stream.unanswered[frame_id] = time.monotonic()
            try:
                await ws.send(build_envelope(frame_id, stream.captured[frame_id], jpeg))
            except ConnectionClosed:
                return
            self.stats.resent += 1

    # -- sending and reading -----------------------------------------------------------------

    async def _send_loop(self, stream: Stream) -> bool:
        """Send on schedule until the run's end (True) or until the socket closes (False)."""
        ws, spec, stats, clock = stream.ws, self.spec, self.stats, self.clock
        assert ws is not None
        period = 1.0 / spec.fps
        frames = spec.frames
        slot = random.uniform(0.0, period) if stream.slot is None else stream.slot
        frame_id = stream.next_frame
        while slot < spec.duration:
            now = clock.now()
            if slot > now:
                await asyncio.sleep(slot - now)
                now = clock.now()
            elif now - slot > period:  # late by a whole period: skip, as a camera would
                missed = int((now - slot) / period)
                stats.skipped_slots += missed
                slot += missed * period
                if slot >= spec.duration:
                    break
            capture_us = time.time_ns() // 1000
            jpeg = frames[(stream.first_frame + frame_id) % len(frames)]
            stream.unanswered[frame_id] = time.monotonic()
            stream.captured[frame_id] = capture_us
            try:
                await ws.send(build_envelope(frame_id, capture_us, jpeg))
            except ConnectionClosed:  # not sent: its slot is tried again after a reconnect
                stream.unanswered.pop(frame_id, None)
                stream.captured.pop(frame_id, None)
                stream.next_frame, stream.slot = frame_id, slot
                return False
            second = int(now)
            stats.sent += 1
            stats.second(second).sent += 1
            stats.observe("send_lag", max(0.0, now - slot) * 1e3, second)
            frame_id += 1
            slot += period
        stream.next_frame, stream.slot = frame_id, slot
        return True

    async def _read_loop(self, stream: Stream) -> None:
        ws, stats, clock = stream.ws, self.stats, self.clock
        assert ws is not None
        try:
            async for raw in ws:
                received = time.monotonic()
                message = json.loads(raw)
                kind = message.get("type")
                frame_id = message.get("frame_id")
                sent_at = stream.unanswered.pop(frame_id, None) if frame_id is not None else None
                if sent_at is not None:
                    stream.captured.pop(frame_id, None)
                second = clock.second()
                if kind == "ack":
                    stats.acked += 1
                    stats.second(second).acked += 1
                    stats.observe("gateway", float(message["gateway_latency_ms"]), second)
                    stats.observe("broker_ack", float(message.get("broker_ms", 0.0)), second)
                    if sent_at is not None:
                        stats.observe("ack_rtt", (received - sent_at) * 1e3, second)
                    if self.spec.subscribe and sent_at is not None:
                        if frame_id in stream.detected_before_ack:
                            stream.detected_before_ack.discard(frame_id)
                        else:
                            stream.awaiting_detections.add(frame_id)
                elif kind == "error" and sent_at is not None:
                    stats.rejected[str(message.get("code", "unknown"))] += 1
                    stats.second(second).rejected += 1
                elif kind == "error":  # names no frame of ours: the frame stays unanswered
                    stats.unmatched_errors += 1
                if not stream.unanswered:
                    stream.check_settled()
        except ConnectionClosed:  # the gateway closed it: we only close after cancelling this
            stats.disconnects += 1
        finally:
            stream.closed = True
            stream.check_settled()

    async def _run_stream(self, stream: Stream) -> None:
        end = self.spec.duration + self.spec.drain
        while True:
            reader = asyncio.create_task(self._read_loop(stream))
            if not stream.finished_sending:
                stream.finished_sending = await self._send_loop(stream)
            stream.check_settled()
            # Drain: wait for the last answers (the reader ends early if the socket closes).
            # A socket that closed mid-run settles at once: the reader has ended or will.
            remaining = end - self.clock.now() if stream.finished_sending else 2.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.settled.wait(), max(0.0, remaining))
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            dropped = stream.closed and (stream.unanswered or not stream.finished_sending)
            if not dropped or not await self._reconnect(stream, end):
                return
            await self._resend(stream)

    # -- detections ----------------------------------------------------------------------------

    async def _follow_detections(self, ready: asyncio.Event) -> None:
        url = f"{self.spec.gateway.rstrip('/')}/v1/subscribe?streams=*"
        stats, clock = self.stats, self.clock
        async with connect(
            url,
            max_size=2**24,
            compression=None,
            ping_interval=None,
            additional_headers=self.headers,
        ) as ws:
            ready.set()
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "dropped":
                    stats.detections_dropped += int(message.get("count", 0))
                    continue
                if kind != "detections":
                    continue
                stream = self.streams.get(message["stream_id"])
                if stream is None:  # another process's (or another client's) stream
                    continue
                frame_id = message["frame_id"]
                if frame_id in stream.awaiting_detections:
                    stream.awaiting_detections.discard(frame_id)
                elif frame_id in stream.unanswered:
                    stream.detected_before_ack.add(frame_id)
                else:  # a repeat (redelivery after a worker failover) or an earlier run's
                    stats.detections_repeated += 1
                    continue
                stats.detected += 1
                second = clock.second()
                stats.second(second).detected += 1
                e2e_ms = (time.time_ns() // 1000 - int(message["capture_ts_us"])) / 1e3
                stats.observe("end_to_end", max(0.0, e2e_ms), second)

    # -- the whole run -------------------------------------------------------------------------

    async def run(
        self, report: Callable[[Any], None], wait_for_start: Callable[[], float]
    ) -> dict[str, object]:
        """Connect, wait for the common start, send, drain; return the picklable result.

        ``wait_for_start`` blocks until every process has connected and returns the wall
        clock time of the first slot; it runs on a thread, off the event loop.
        """
        spec = self.spec
        gate = self._gate
        follower: asyncio.Task[None] | None = None
        if spec.subscribe:
            ready = asyncio.Event()
            follower = asyncio.create_task(self._follow_detections(ready))
            await asyncio.wait(
                [follower, asyncio.create_task(ready.wait())], return_when="FIRST_COMPLETED"
            )
            if follower.done():
                follower.result()  # raises why the subscribe socket failed
        ticker = asyncio.create_task(self._tick(report))
        await asyncio.gather(*(self._connect(s, gate) for s in self.streams.values()))
        connected = [s for s in self.streams.values() if s.ws is not None]
        report(("connected", spec.index, len(connected)))
        start_at = await asyncio.get_running_loop().run_in_executor(None, wait_for_start)
        self.clock.begin(start_at)
        await asyncio.gather(*(self._run_stream(s) for s in connected))
        if follower is not None:  # the last detections trail the last acks
            deadline = spec.duration + spec.drain
            # One poll for the whole process (not one per stream), ten times a second.
            while self.clock.now() < deadline and any(  # noqa: ASYNC110
                s.awaiting_detections for s in self.streams.values()
            ):
                await asyncio.sleep(0.1)
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await follower
        for stream in connected:
            self.stats.lost += len(stream.unanswered)
            self.stats.undetected += len(stream.awaiting_detections)
        await asyncio.gather(
            *(s.ws.close() for s in connected if s.ws is not None), return_exceptions=True
        )
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        return self.stats.result()

    async def _tick(self, report: Any) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            report(("progress", self.spec.index, self.stats.counters(), self.stats.take_window()))


class StartSignal(Protocol):
    """The parent's "go": set once every process has connected, with the start time."""

    def wait(self, timeout: float | None = None) -> bool: ...


class Outbox(Protocol):
    def put(self, item: Any) -> None: ...
    def put_nowait(self, item: Any) -> None: ...


def run_session(spec: SessionSpec, queue: Outbox, go: StartSignal, start_at: Any) -> None:
    """Entry point of a loadgen process: run the session on uvloop, post its result.

    ``start_at`` is a shared double (multiprocessing.Value) the parent fills before ``go``.
    """
    logging.basicConfig(level=logging.WARNING)

    def wait_for_start() -> float:
        go.wait()
        return float(start_at.value)

    async def main() -> None:
        # Same reason as the gateway's: thousands of sockets make Python's default GC
        # stall the loop for 100+ ms at a time, which would show up as loadgen's lag.
        tune_gc_for_many_connections(GC_YOUNG_THRESHOLD)
        try:
            result = await Session(spec).run(queue.put_nowait, wait_for_start)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            queue.put(("error", spec.index, f"{type(exc).__name__}: {exc}"))
            return
        queue.put(("result", spec.index, result))

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop ships on every platform we support
        asyncio.run(main())
