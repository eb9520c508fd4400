"""vae.events and vae.counts -> the events socket and the counts endpoint; vae.tracks ->
the subscribe socket (``{"type":"tracks"}`` messages: the objects with their track ids).

Events are followed live (the socket gets what comes after the gateway started), counts
from their starts: the counts topic holds one record per closed window, stream, rule and
class, so reading it whole gives every stream's totals since the analytics started.
Decoding and JSON happen on the consumer thread; the loop only fans out and updates the
board.

The events feed also fills the event index (pipeline/gateway/event_index.py), for the
events' snapshots and clips: it reads the events topic from the last
VAE_GATEWAY_EVENTS_INDEX records of each partition on, the records already there going to
the index only (the catch-up, ``Follow.history``), the new ones to the index first and
then to the socket (an event a client is sent is already found by id in this process).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import NamedTuple

from pipeline.config import Settings
from pipeline.gateway.context import GatewayContext
from pipeline.gateway.event_index import EventRef, event_ref
from pipeline.kafka.tail import Follow
from pipeline.protocol import messages
from pipeline.serde import CountsRecord, SchemaIds
from pipeline.topics import engine_topics


class _Item(NamedTuple):
    stream_id: str
    text: str | None  # None: for the event index only (an event from before the start)
    counts: CountsRecord | None
    subscribe: bool = False  # a tracks message: for the subscribe socket, not the events one
    ref: EventRef | None = None  # an event, for the event index


def analytics_feeds(
    settings: Settings, ids: SchemaIds, ctx: GatewayContext, loop: asyncio.AbstractEventLoop
) -> list[Follow[_Item]]:
    topics = engine_topics(settings.topics)
    events = topics.events.reader(ids)
    counts = topics.counts.reader(ids)
    tracked = topics.tracks.reader(ids)
    indexing = settings.gateway.events_index > 0

    def handle_tracks(_key: bytes | None, value: bytes) -> _Item:
        record = tracked.decode(value)
        return _Item(record["stream_id"], messages.tracks(record), None, subscribe=True)

    def handle_event(_key: bytes | None, value: bytes) -> _Item:
        record = events.decode(value)
        ref = event_ref(record) if indexing else None
        return _Item(record["stream_id"], messages.analytics_event(record), None, ref=ref)

    def handle_past_event(_key: bytes | None, value: bytes) -> _Item:
        record = events.decode(value)
        return _Item(record["stream_id"], None, None, ref=event_ref(record))

    def handle_counts(_key: bytes | None, value: bytes) -> _Item:
        record = counts.decode(value)
        return _Item(record["stream_id"], messages.analytics_counts(record), record)

    def publish(batch: list[_Item]) -> None:
        indexed = False
        for item in batch:
            if item.ref is not None:
                ctx.event_index.add(item.ref)
                indexed = True
            if item.counts is not None:
                ctx.counts.apply(item.counts)
            if item.text is None:
                continue
            hub = ctx.hub if item.subscribe else ctx.analytics_hub
            _, dropped = hub.publish(item.stream_id, item.text)
            if dropped:
                ctx.metrics.subscriber_dropped.inc(dropped)
        if indexed:
            ctx.metrics.events_indexed.set(len(ctx.event_index))

    def deliver(batch: list[_Item]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            loop.call_soon_threadsafe(publish, batch)

    size = settings.gateway.events_index
    events_feed = (
        Follow(
            topics.events.name,
            handle_event,
            deliver,
            from_start=True,
            last=size,
            history=handle_past_event,
        )
        if indexing
        else Follow(topics.events.name, handle_event, deliver)
    )
    return [
        events_feed,
        Follow(topics.counts.name, handle_counts, deliver, from_start=True),
        # The subscribe socket carries track ids too: each tracks record after its detections.
        Follow(topics.tracks.name, handle_tracks, deliver),
    ]
