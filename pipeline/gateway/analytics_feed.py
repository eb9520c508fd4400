"""vae.events and vae.counts -> the events socket and the counts endpoint; vae.tracks ->
the subscribe socket (``{"type":"tracks"}`` messages: the objects with their track ids).

Events are followed from the topics' ends (a live feed), counts from their starts: the
counts topic holds one record per closed window, stream, rule and class, so reading it whole
gives every stream's totals since the analytics started. Decoding and JSON happen on the
consumer threads; the loop only fans out and updates the board.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import NamedTuple

from pipeline.config import Settings
from pipeline.gateway.context import GatewayContext
from pipeline.kafka.tail import Follow
from pipeline.protocol import messages
from pipeline.serde import CountsRecord, SchemaIds
from pipeline.topics import engine_topics


class _Item(NamedTuple):
    stream_id: str
    text: str
    counts: CountsRecord | None
    subscribe: bool = False  # a tracks message: for the subscribe socket, not the events one


def analytics_feeds(
    settings: Settings, ids: SchemaIds, ctx: GatewayContext, loop: asyncio.AbstractEventLoop
) -> list[Follow[_Item]]:
    topics = engine_topics(settings.topics)
    events = topics.events.reader(ids)
    counts = topics.counts.reader(ids)
    tracked = topics.tracks.reader(ids)

    def handle_tracks(_key: bytes | None, value: bytes) -> _Item:
        record = tracked.decode(value)
        return _Item(record["stream_id"], messages.tracks(record), None, subscribe=True)

    def handle_event(_key: bytes | None, value: bytes) -> _Item:
        record = events.decode(value)
        return _Item(record["stream_id"], messages.analytics_event(record), None)

    def handle_counts(_key: bytes | None, value: bytes) -> _Item:
        record = counts.decode(value)
        return _Item(record["stream_id"], messages.analytics_counts(record), record)

    def publish(batch: list[_Item]) -> None:
        for item in batch:
            if item.counts is not None:
                ctx.counts.apply(item.counts)
            hub = ctx.hub if item.subscribe else ctx.analytics_hub
            _, dropped = hub.publish(item.stream_id, item.text)
            if dropped:
                ctx.metrics.subscriber_dropped.inc(dropped)

    def deliver(batch: list[_Item]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
            loop.call_soon_threadsafe(publish, batch)

    return [
        Follow(topics.events.name, handle_event, deliver),
        Follow(topics.counts.name, handle_counts, deliver, from_start=True),
        # The subscribe socket carries track ids too: each tracks record after its detections.
        Follow(topics.tracks.name, handle_tracks, deliver),
    ]
