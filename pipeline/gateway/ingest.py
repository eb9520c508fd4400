"""WS /v1/ingest/{stream_id}: one binary message = one frame, published keyed by stream_id.

Reading and producing never wait on the broker: a frame is queued to the producer and
its delivery is awaited by a second task that sends acks (and delivery errors) in order.
When the producer's local queue is full, reading pauses (TCP pushes back on the camera)
for up to VAE_GATEWAY_BACKPRESSURE_TIMEOUT_MS, then the frame is refused as `overloaded`.
On an ordered socket (``?ordered=1``) such a refusal (or `rate_limited`) also ends the
socket: nothing after the refused frame is read, the frames before it are acked as the
broker takes them, then the socket closes (1013, try again later). When the client sends
the refused frame again, no later frame of its stream is ahead of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from pipeline.gateway.context import GatewayContext
from pipeline.kafka.producer import Delivered, DeliveryFailed, QueueFull
from pipeline.protocol import messages
from pipeline.protocol.envelope import IngestError, envelope_frame_id, parse_ingest_message
from pipeline.protocol.routes import Ingest
from pipeline.serde import frame_record

log = logging.getLogger(__name__)

# Frames of one socket queued to the broker but not yet acknowledged; past this the
# socket's reads pause until acks catch up.
MAX_PENDING_PER_SOCKET = 1024


class Pending(NamedTuple):
    frame_id: int
    delivery: asyncio.Future[Delivered]
    started: float  # perf_counter at receipt


async def _send(ws: ServerConnection, text: str) -> bool:
    try:
        await ws.send(text)
        return True
    except ConnectionClosed:
        return False


async def _acknowledge(
    ws: ServerConnection,
    pending: asyncio.Queue[Pending | None],
    want_acks: bool,
    ctx: GatewayContext,
) -> None:
    """Await deliveries in receipt order; count them and tell the sender."""
    metrics = ctx.metrics
    connected = True
    while (item := await pending.get()) is not None:
        try:
            delivered = await item.delivery
        except DeliveryFailed as exc:
            metrics.frames_rejected.labels("produce_failed").inc()
            log.warning("frame %d not delivered: %s", item.frame_id, exc)
            if connected:
                connected = await _send(
                    ws, messages.error("produce_failed", f"{exc.code}: {exc}", item.frame_id)
                )
            continue
        latency = time.perf_counter() - item.started
        metrics.frames_produced.inc()
        metrics.gateway_latency.observe(latency)
        metrics.broker_ack_latency.observe(delivered.broker_s)
        if want_acks and connected:
            connected = await _send(
                ws,
                messages.ack(
                    item.frame_id,
                    latency * 1e3,
                    delivered.broker_s * 1e3,
                    delivered.partition,
                    delivered.offset,
                ),
            )


async def handle_ingest(ws: ServerConnection, route: Ingest, ctx: GatewayContext) -> None:
    """Serve one camera's socket until it closes."""
    settings, metrics = ctx.settings, ctx.metrics
    max_bytes = settings.gateway.max_frame_bytes
    frames = ctx.frames
    wait_s = settings.gateway.backpressure_timeout_ms / 1000.0
    key = route.stream_id.encode()
    pending: asyncio.Queue[Pending | None] = asyncio.Queue(MAX_PENDING_PER_SOCKET)
    acker = asyncio.create_task(_acknowledge(ws, pending, route.ack, ctx))
    sequence = 0
    closing = ""  # an ordered socket's refusal: why it closes once the frames before are acked
    metrics.ingest_connections.inc()
    ctx.rates.open(route.stream_id)
    rate_message = (
        f"over {ctx.settings.gateway.max_fps_per_stream:g} frames/s for this stream "
        "(VAE_GATEWAY_MAX_FPS_PER_STREAM): frame dropped"
    )
    try:
        await ws.send(
            messages.hello(
                "ingest",
                stream_id=route.stream_id,
                ack=route.ack,
                ordered=route.ordered,
                max_frame_bytes=max_bytes,
            )
        )
        async for message in ws:
            started = time.perf_counter()
            received_us = time.time_ns() // 1000
            if isinstance(message, str):
                metrics.frames_rejected.labels("expected_binary").inc()
                await ws.send(
                    messages.error("expected_binary", "send frames as binary messages (JPEG bytes)")
                )
                continue
            metrics.frames_received.inc()
            metrics.bytes_received.inc(len(message))
            if not ctx.rates.allow(route.stream_id):
                metrics.frames_rejected.labels("rate_limited").inc()
                # Not parsed (that is the CPU the limit saves), but named when an envelope
                # carries its id, so a resending client can send it again later.
                refused = envelope_frame_id(message)
                await ws.send(messages.error("rate_limited", rate_message, refused))
                if route.ordered:
                    closing = "rate_limited: send it again"
                    break
                continue
            try:
                frame = parse_ingest_message(message, max_bytes)
            except IngestError as exc:
                metrics.frames_rejected.labels(exc.code).inc()
                await ws.send(messages.error(exc.code, exc.message, exc.frame_id))
                continue
            frame_id = frame.frame_id if frame.frame_id is not None else sequence
            sequence += 1
            record = frame_record(
                stream_id=route.stream_id,
                frame_id=frame_id,
                capture_ts_us=frame.capture_ts_us or received_us,
                gateway_ts_us=received_us,
                width=frame.width,
                height=frame.height,
                image=frame.image,
            )
            value = frames.value(record)
            try:
                delivery = await ctx.producer.produce_waiting(frames.topic, key, value, wait_s)
            except QueueFull as exc:
                metrics.frames_rejected.labels("overloaded").inc()
                await ws.send(messages.error("overloaded", str(exc), frame_id))
                if route.ordered:
                    closing = "overloaded: send it again"
                    break
                continue
            ctx.streams.frame(
                route.stream_id, frame_id, received_us, frame.width, frame.height, frame.image
            )
            ctx.history.add(route.stream_id, frame_id, received_us, frame.image)
            await pending.put(Pending(frame_id, delivery, started))
    except ConnectionClosed:
        pass
    finally:
        metrics.ingest_connections.dec()
        ctx.rates.close(route.stream_id)
        # Let in-flight deliveries finish so they are counted (acks to a closed socket are skipped).
        await pending.put(None)
        await acker
        if closing:
            await ws.close(CloseCode.TRY_AGAIN_LATER, closing)
