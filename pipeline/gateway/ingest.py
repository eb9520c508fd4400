"""WS /v1/ingest/{stream_id}: one binary message = one frame, published keyed by stream_id.

A camera's frames are served from the connection's callbacks, not by a coroutine reading
``recv()``: each data frame websockets parses goes straight to ``IngestSession.on_frame``
(validate, Avro-encode, queue to the producer), and each delivery report settles on the
loop in the producer's batch, where the session writes its acks in receipt order. Per
frame that is no task, no future and no queue hand-off: what a frame costs the gateway is
mostly the socket read, the produce call and the ack write (docs/benchmarks.md, Gateway).

Reading pauses (the transport stops reading, TCP pushes back on the camera) while any
bound is reached: the producer's local queue is full (each frame then waits up to
VAE_GATEWAY_BACKPRESSURE_TIMEOUT_MS for room, and is refused as `overloaded` after that),
MAX_PENDING_PER_SOCKET frames await the broker, or the acks written are not being read.

On an ordered socket (``?ordered=1``) a refusal that may pass (`overloaded`, `rate_limited`)
ends the socket: reading pauses for good and nothing after the refused frame is served
(frames already read behind it are dropped, uncounted), the frames before it are acked (or
answered) in order as the broker settles them, then the socket closes with 1013 (try again
later). A client that sends the refused frame again, first, on a new socket keeps its
stream's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import NamedTuple

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode

from pipeline.gateway.connection import GatewayConnection
from pipeline.gateway.context import GatewayContext
from pipeline.kafka.producer import DeliveryReport
from pipeline.protocol import messages
from pipeline.protocol.envelope import IngestError, envelope_frame_id, parse_ingest_message
from pipeline.protocol.routes import Ingest
from pipeline.serde import frame_record

log = logging.getLogger(__name__)

# Frames of one socket queued to the broker but not yet acknowledged; at this many the
# socket's reads pause until acks catch up (they resume at half).
MAX_PENDING_PER_SOCKET = 1024

# Refusals that end an ordered socket (they may pass: the client sends the frame again).
CLOSING_REFUSALS = frozenset({"overloaded", "rate_limited"})

_TEXT, _CONT = Opcode.TEXT, Opcode.CONT


class _Sent(DeliveryReport):
    """One frame handed to the producer; settles (on the loop) into its ack."""

    __slots__ = ("frame_id", "landed", "session", "started")

    def __init__(self, session: IngestSession, frame_id: int, started: float) -> None:
        super().__init__()
        self.session = session
        self.frame_id = frame_id
        self.started = started
        self.landed = False

    def settle(self) -> None:
        self.landed = True
        self.session.landed(self)


class _Ready(NamedTuple):
    """A validated, encoded frame that found the producer's queue full: it waits for room."""

    report: _Sent
    value: bytes
    image: bytes
    width: int
    height: int
    received_us: int
    deadline: float  # monotonic: refused as `overloaded` past it


class IngestSession:
    """One camera socket: frames in, produce, acks out in receipt order."""

    def __init__(self, ws: GatewayConnection, route: Ingest, ctx: GatewayContext) -> None:
        self.ws = ws
        self.ctx = ctx
        self.stream_id = route.stream_id
        self.want_acks = route.ack
        self.ordered = route.ordered
        self.key = route.stream_id.encode()
        gw = ctx.settings.gateway
        self.max_bytes = gw.max_frame_bytes
        self.wait_s = gw.backpressure_timeout_ms / 1000.0
        self.rate_message = (
            f"over {gw.max_fps_per_stream:g} frames/s for this stream "
            "(VAE_GATEWAY_MAX_FPS_PER_STREAM): frame dropped"
        )
        m = ctx.metrics
        self._received, self._bytes = m.frames_received, m.bytes_received
        self._produced, self._latency, self._broker = (
            m.frames_produced,
            m.gateway_latency,
            m.broker_ack_latency,
        )
        self.sequence = 0
        self.open = True
        # Messages read while reading is paused (one read's worth at most), and the frame
        # waiting for room in the producer's queue.
        self.inbox: deque[tuple[bytes, float, int]] = deque()
        self.stalled: _Ready | None = None
        self.pending: deque[_Sent] = deque()  # produced, in receipt order, not yet acked
        self.holds: set[str] = set()  # why reading is paused: queue, acks, writes, closing
        self.closing = ""  # an ordered socket's refusal: the close reason once answered
        self._closer: asyncio.Task[None] | None = None
        self._fragments: list[bytes] | None = None
        self._fragmented_text = False
        self._waiter: asyncio.Task[None] | None = None
        self._drained: asyncio.Future[None] | None = None

    # --- frames in ---------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        """Every data frame of the socket, as websockets parses it (inside data_received)."""
        if self.closing:
            return  # after an ordered socket's refusal: read past until the close, not served
        opcode = frame.opcode
        if opcode is _CONT:
            if self._fragments is None:
                return  # websockets refuses a stray continuation frame itself
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            data, text = b"".join(self._fragments), self._fragmented_text
            self._fragments = None
        elif not frame.fin:
            self._fragments, self._fragmented_text = [bytes(frame.data)], opcode is _TEXT
            return
        else:
            data, text = bytes(frame.data), opcode is _TEXT
        if text:
            self.refuse("expected_binary", "send frames as binary messages (JPEG bytes)", None)
            return
        started = time.perf_counter()
        received_us = time.time_ns() // 1000
        if self.holds or self.inbox or self.stalled is not None:
            self.inbox.append((data, started, received_us))
            return
        ready = self.admit(data, started, received_us)
        if ready is not None and not self.produce(ready):
            self.stall(ready)

    def admit(self, message: bytes, started: float, received_us: int) -> _Ready | None:
        """Count, rate-limit, validate and encode one frame; None if it was refused."""
        self._received.inc()
        self._bytes.inc(len(message))
        ctx = self.ctx
        if not ctx.rates.allow(self.stream_id):
            # Not parsed (that is the CPU the limit saves), but named when an envelope
            # carries its id, so that a resending client can send it again.
            self.refuse("rate_limited", self.rate_message, envelope_frame_id(message))
            return None
        try:
            frame = parse_ingest_message(message, self.max_bytes)
        except IngestError as exc:
            self.refuse(exc.code, exc.message, exc.frame_id)
            return None
        frame_id = frame.frame_id if frame.frame_id is not None else self.sequence
        self.sequence += 1
        value = ctx.frames.value(
            frame_record(
                stream_id=self.stream_id,
                frame_id=frame_id,
                capture_ts_us=frame.capture_ts_us or received_us,
                gateway_ts_us=received_us,
                width=frame.width,
                height=frame.height,
                image=frame.image,
            )
        )
        return _Ready(
            _Sent(self, frame_id, started),
            value,
            frame.image,
            frame.width,
            frame.height,
            received_us,
            0.0,
        )

    def produce(self, ready: _Ready) -> bool:
        """Queue a frame to the producer; False (nothing queued) when its queue is full."""
        ctx = self.ctx
        try:
            ctx.producer.send(ctx.frames.topic, self.key, ready.value, ready.report)
        except BufferError:
            return False
        frame_id = ready.report.frame_id
        ctx.streams.frame(
            self.stream_id, frame_id, ready.received_us, ready.width, ready.height, ready.image
        )
        ctx.history.add(self.stream_id, frame_id, ready.received_us, ready.image)
        self.pending.append(ready.report)
        if len(self.pending) >= MAX_PENDING_PER_SOCKET:
            self.hold("acks")
        return True

    def refuse(self, code: str, message: str, frame_id: int | None) -> None:
        self.ctx.metrics.rejected(code).inc()
        if self.open:
            self.open = self.ws.write_now(messages.error(code, message, frame_id))
            if self.open and self.ws.paused:  # a client that sends and never reads
                self.hold("writes")
        if self.ordered and code in CLOSING_REFUSALS:
            self.end(f"{code}: send it again")

    # --- an ordered socket's end -------------------------------------------------------

    def end(self, reason: str) -> None:
        """Serve nothing after the refused frame; close once the frames before it settle."""
        self.closing = reason
        self.hold("closing")  # never released: the socket closes
        self.inbox.clear()
        self._fragments = None
        if not self.pending:
            self.close_socket()

    def close_socket(self) -> None:
        if self._closer is None and self.open:
            self._closer = asyncio.get_running_loop().create_task(self._close_socket())

    async def _close_socket(self) -> None:
        # Read again, so the client's answering close frame arrives (data before it is
        # dropped by on_frame); close() waits for the acks written to drain first.
        self.ws.transport.resume_reading()
        await self.ws.close(CloseCode.TRY_AGAIN_LATER, self.closing)

    # --- backpressure ------------------------------------------------------------------

    def hold(self, reason: str) -> None:
        if not self.holds and self.open:
            self.ws.transport.pause_reading()
        self.holds.add(reason)

    def release(self, reason: str) -> None:
        if reason not in self.holds:
            return
        self.holds.discard(reason)
        if not self.holds:
            if self.open:
                self.ws.transport.resume_reading()
            self.drain_inbox()

    def drain_inbox(self) -> None:
        """Serve frames read while reading was paused, in order, until a bound is hit."""
        while not self.holds and self.stalled is None and self.inbox:
            ready = self.admit(*self.inbox.popleft())
            if ready is not None and not self.produce(ready):
                self.stall(ready)

    def stall(self, ready: _Ready) -> None:
        self.stalled = ready._replace(deadline=time.monotonic() + self.wait_s)
        self.hold("queue")
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_task(self._wait_for_room())

    async def _wait_for_room(self) -> None:
        room = self.ctx.producer.room
        try:
            while (ready := self.stalled) is not None and self.open:
                left = ready.deadline - time.monotonic()
                if left <= 0:
                    self.stalled = None
                    self.refuse(
                        "overloaded",
                        f"producer queue full for {self.wait_s:.1f} s "
                        f"({len(self.ctx.producer)} messages pending)",
                        ready.report.frame_id,
                    )
                elif self.produce(ready):
                    self.stalled = None
                else:
                    room.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(room.wait(), min(left, 0.1))
                    continue
                # One frame out of the way: read again and serve what was read meanwhile
                # (which may stall again: this task then goes on with that frame).
                self.release("queue")
        finally:
            self._waiter = None
            if self.stalled is None:
                self.release("queue")

    def on_writable(self) -> None:
        self.release("writes")

    # --- acks out ----------------------------------------------------------------------

    def landed(self, report: _Sent) -> None:
        """A delivery settled (on the loop): ack every settled frame at the head, in order."""
        pending = self.pending
        if not pending or not pending[0].landed:
            return  # an earlier frame is still in flight; its settlement acks this one
        produced = 0
        now = time.perf_counter()
        while pending and pending[0].landed:
            done = pending.popleft()
            if done.error is not None:
                self.ctx.metrics.rejected("produce_failed").inc()
                log.warning("frame %d not delivered: %s", done.frame_id, done.error)
                if self.open:
                    error = done.error
                    self.open = self.ws.write_now(
                        messages.error("produce_failed", f"{error.code}: {error}", done.frame_id)
                    )
                continue
            produced += 1
            latency = now - done.started
            self._latency.observe(latency)
            self._broker.observe(done.broker_s)
            if self.want_acks and self.open:
                self.open = self.ws.write_now(
                    messages.ack(
                        done.frame_id,
                        latency * 1e3,
                        done.broker_s * 1e3,
                        done.partition,
                        done.offset,
                    )
                )
        if produced:
            self._produced.inc(produced)
        if self.open and self.ws.paused:  # the client is not reading its acks
            self.hold("writes")
        if len(pending) <= MAX_PENDING_PER_SOCKET // 2:
            self.release("acks")
        if not pending:
            if self.closing:
                self.close_socket()
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)

    async def close(self) -> None:
        """The socket closed: drop what was never produced, wait for what is in flight."""
        self.open = False
        if self.stalled is not None:  # found no room before the camera left
            self.ctx.metrics.rejected("overloaded").inc()
            self.stalled = None
        self.inbox.clear()
        if self._waiter is not None:
            self._waiter.cancel()
        if self.pending:
            # Let in-flight deliveries finish so they are counted.
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        if self._closer is not None:
            await self._closer  # its close() returns once the connection is gone


async def handle_ingest(ws: GatewayConnection, route: Ingest, ctx: GatewayContext) -> None:
    """Serve one camera's socket until it closes."""
    session = IngestSession(ws, route, ctx)
    # Set before the first await, so no frame reaches websockets' own queue.
    ws.hand_frames_to(session.on_frame)
    ws.writable = session.on_writable
    ctx.metrics.ingest_connections.inc()
    ctx.rates.open(route.stream_id)
    try:
        hello = messages.hello(
            "ingest",
            stream_id=route.stream_id,
            ack=route.ack,
            ordered=route.ordered,
            max_frame_bytes=session.max_bytes,
        )
        await ws.send(hello)
        await ws.wait_closed()
    except ConnectionClosed:
        pass
    finally:
        ctx.metrics.ingest_connections.dec()
        ctx.rates.close(route.stream_id)
        await session.close()
        ws.hand_frames_to(None)
        ws.writable = None
