"""Detections topic -> subscribers: decoded and serialised off the loop, fanned out on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import NamedTuple

from pipeline.config import Settings
from pipeline.gateway.context import GatewayContext
from pipeline.kafka.tail import Follow
from pipeline.protocol import messages
from pipeline.serde import SchemaIds
from pipeline.topics import engine_topics


class Outgoing(NamedTuple):
    stream_id: str
    frame_id: int
    capture_ts_us: int
    text: str


def results_feed(
    settings: Settings, ids: SchemaIds, ctx: GatewayContext, loop: asyncio.AbstractEventLoop
) -> Follow[Outgoing]:
    """The detections topic, each record published to the hub."""
    decoder = engine_topics(settings.topics).detections.reader(ids)

    def handle(_key: bytes | None, value: bytes) -> Outgoing:
        # Runs on the consumer thread.
        record = decoder.decode(value)
        return Outgoing(
            record["stream_id"],
            record["frame_id"],
            record["capture_ts_us"],
            messages.detections(record),
        )

    def publish(batch: list[Outgoing]) -> None:
        # Runs on the event loop.
        now_us = time.time_ns() // 1000
        metrics = ctx.metrics
        for item in batch:
            metrics.detections_received.inc()
            metrics.e2e_latency.observe(max(0, now_us - item.capture_ts_us) / 1e6)
            ctx.streams.detections(item.stream_id, item.frame_id, now_us)
            _, dropped = ctx.hub.publish(item.stream_id, item.text)
            if dropped:
                metrics.subscriber_dropped.inc(dropped)

    def deliver(batch: list[Outgoing]) -> None:
        # Runs on the consumer thread: one loop wake-up per batch.
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            loop.call_soon_threadsafe(publish, batch)

    return Follow(settings.topics.detections, handle, deliver)
