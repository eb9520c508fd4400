"""A camera connection that loses nothing the gateway could take: keep, reconnect, resend.

Each frame stays in a bounded buffer until the gateway acks it (the ack means the broker
has it). When the socket drops, the client reconnects with jittered exponential backoff and
resends, oldest first, every frame not acked, so per-stream order is kept. A refusal that may
pass (`overloaded`, `rate_limited`, `produce_failed`) keeps the frame to send again. The
socket is opened ``ordered``: after an `overloaded` or `rate_limited` refusal the gateway
reads nothing more, acks the frames before the refused one and closes the socket, so the
resend comes before any later frame of the stream (a gateway without ordered sockets, or a
`produce_failed`, leaves the socket open and the resend may come after later frames). When
the buffer is full (the gateway unreachable for longer than it holds), the oldest frame goes
and is counted: a live camera prefers its newest frames. A frame resent after its ack was
lost in the drop reaches the broker twice: downstream tolerates that (README, "Delivery
guarantees").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from client.ingest import GatewayError, IngestClient

log = logging.getLogger(__name__)

# Refusals that may pass: the frame is kept and sent again after a backoff (a resend burst
# after an outage is what the gateway's per-stream rate limit refuses first).
TRANSIENT_REFUSALS = frozenset({"overloaded", "produce_failed", "rate_limited"})
# Of them, those after which an ordered socket is closed by the gateway.
CLOSING_REFUSALS = frozenset({"overloaded", "rate_limited"})


@dataclass
class ResendStats:
    """What happened to the frames handed to one client (or summed over many)."""

    put: int = 0  # frames handed over
    sent: int = 0  # frames sent for the first time
    resent: int = 0  # sends of a frame sent before (after a drop or a transient refusal)
    acked: int = 0
    dropped_oldest: int = 0  # pushed out of a full buffer before being acked
    refused: dict[str, int] = field(default_factory=dict)  # permanent refusals, by code
    retried: dict[str, int] = field(default_factory=dict)  # transient refusals, by code
    reconnects: int = 0

    def add(self, other: ResendStats) -> None:
        self.put += other.put
        self.sent += other.sent
        self.resent += other.resent
        self.acked += other.acked
        self.dropped_oldest += other.dropped_oldest
        self.reconnects += other.reconnects
        for code, count in other.refused.items():
            self.refused[code] = self.refused.get(code, 0) + count
        for code, count in other.retried.items():
            self.retried[code] = self.retried.get(code, 0) + count


@dataclass(slots=True)
class _Frame:
    jpeg: bytes
    capture_ts_us: int
    sends: int = 0
    sent_here: bool = False  # sent on the current connection, ack awaited


class ResendingClient:
    """``async with ResendingClient(url, "cam-1") as cam: cam.put(jpeg, n); await cam.drain()``.

    ``put`` never blocks; a background task owns the socket. Frame ids must be unique per
    stream (they match acks to frames).
    """

    def __init__(
        self,
        gateway_url: str,
        stream_id: str,
        *,
        buffer_frames: int = 256,
        backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
        **ws_options: Any,
    ) -> None:
        if buffer_frames < 1:
            raise ValueError("buffer_frames must be at least 1")
        self.gateway_url = gateway_url
        self.stream_id = stream_id
        self.buffer_frames = buffer_frames
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = ResendStats()
        self.connected = asyncio.Event()
        self._ws_options = ws_options
        self._buffer: OrderedDict[int, _Frame] = OrderedDict()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._retry_at = 0.0  # monotonic: after a transient refusal, wait before sending
        self._ordered = False  # the gateway ends the socket after a refusal (hello says so)
        self._halted = False  # refused on an ordered socket: send nothing more on it
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ResendingClient:
        self._task = asyncio.create_task(self._run(), name=f"resend-{self.stream_id}")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def unacked(self) -> int:
        return len(self._buffer)

    def put(self, jpeg: bytes, frame_id: int, capture_ts_us: int | None = None) -> None:
        """Hand a frame over; it is kept until acked (or pushed out when the buffer is full)."""
        if frame_id in self._buffer:
            raise ValueError(f"frame id {frame_id} is already waiting for its ack")
        while len(self._buffer) >= self.buffer_frames:
            self._buffer.popitem(last=False)
            self.stats.dropped_oldest += 1
        capture = capture_ts_us if capture_ts_us is not None else time.time_ns() // 1000
        self._buffer[frame_id] = _Frame(jpeg, capture)
        self.stats.put += 1
        self._empty.clear()
        self._wake.set()

    async def drain(self) -> None:
        """Wait until every frame handed over is acked, dropped or refused (bound it with
        ``asyncio.timeout``); raises what ended the client if it ended."""
        if self._task is None:
            raise RuntimeError("not started: use `async with ResendingClient(...)`")
        empty = asyncio.create_task(self._empty.wait())
        try:
            await asyncio.wait([empty, self._task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            empty.cancel()
        if self._task.done() and not self._empty.is_set():
            self._task.result()

    async def close(self) -> None:
        """Stop now; frames not acked are abandoned (``unacked`` says how many)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- the socket's owner ---------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with IngestClient(
                    self.gateway_url, self.stream_id, ack=True, ordered=True, **self._ws_options
                ) as cam:
                    attempt = 0
                    self._ordered = bool(cam.hello.get("ordered"))
                    self._halted = False
                    self.connected.set()
                    for frame in self._buffer.values():
                        frame.sent_here = False  # whatever was not acked goes again
                    await self._serve(cam)
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                # A refusal at connect (GatewayError: a bad stream id, say) is not retried.
                self.connected.clear()
                delay = random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))
                attempt += 1
                self.stats.reconnects += 1
                after_refusal = self._halted and isinstance(exc, ConnectionClosed)
                (log.debug if after_refusal else log.warning)(
                    "%s: gateway %s unavailable (%s); %d frames unacked; retrying in %.1f s",
                    self.stream_id,
                    self.gateway_url,
                    exc,
                    len(self._buffer),
                    delay,
                )
                await asyncio.sleep(delay)

    async def _serve(self, cam: IngestClient) -> None:
        reader = asyncio.create_task(self._read(cam))
        try:
            while True:
                if reader.done():
                    reader.result()  # raises why the socket ended
                    return
                wait = self._retry_at - time.monotonic()
                frame_id = self._next_unsent() if wait <= 0 and not self._halted else None
                if frame_id is None:
                    self._wake.clear()
                    waker = asyncio.create_task(self._wake.wait())
                    await asyncio.wait(
                        [reader, waker],
                        timeout=max(wait, 0.05) if wait > 0 else None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    waker.cancel()
                    continue
                frame = self._buffer[frame_id]
                await cam.send(frame.jpeg, frame_id, frame.capture_ts_us)
                if frame.sends:
                    self.stats.resent += 1
                else:
                    self.stats.sent += 1
                frame.sends += 1
                frame.sent_here = True
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    def _next_unsent(self) -> int | None:
        for frame_id, frame in self._buffer.items():
            if not frame.sent_here:
                return frame_id
        return None

    async def _read(self, cam: IngestClient) -> None:
        while True:
            try:
                ack = await cam.receive()
            except GatewayError as exc:
                self._refused(exc)
                continue
            if self._buffer.pop(ack.frame_id, None) is not None:
                self.stats.acked += 1
            if not self._buffer:
                self._empty.set()

    def _refused(self, exc: GatewayError) -> None:
        frame_id = exc.frame_id
        frame = self._buffer.get(frame_id) if frame_id is not None else None
        if frame is None or frame_id is None:
            log.warning("%s: %s", self.stream_id, exc)
            return
        if exc.code in TRANSIENT_REFUSALS:
            self.stats.retried[exc.code] = self.stats.retried.get(exc.code, 0) + 1
            frame.sent_here = False  # send again, after a pause
            if self._ordered and exc.code in CLOSING_REFUSALS:
                self._halted = True  # the gateway closes this socket: send again on the next
            self._retry_at = time.monotonic() + random.uniform(0.5, 1.0) * self.backoff_s * 5
            self._wake.set()
            return
        del self._buffer[frame_id]
        self.stats.refused[exc.code] = self.stats.refused.get(exc.code, 0) + 1
        log.warning("%s: frame %s refused: %s", self.stream_id, exc.frame_id, exc)
        if not self._buffer:
            self._empty.set()
