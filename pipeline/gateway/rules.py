"""/v1/rules: the analytics rules in force (GET), and saving new ones (WebSocket).

websockets serves GET requests only (no request bodies), so a client saves rules over a
socket: each text message is a whole rules document (README: Analytics), validated here
(an error names the bad key) and, when valid, published to the compacted rules topic,
which every analytics worker follows and applies without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from pipeline.config import Settings
from pipeline.gateway.context import GatewayContext
from pipeline.kafka.producer import DeliveryFailed
from pipeline.kafka.tail import Follow
from pipeline.protocol import messages
from pipeline.protocol.rules import RulesError, parse_rules
from pipeline.serde import RulesRecord, SchemaIds
from pipeline.topics import engine_topics


async def handle_rules(ws: ServerConnection, ctx: GatewayContext) -> None:
    await ws.send(messages.hello("rules", yaml=ctx.rules.text))
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            if not isinstance(message, str):
                await ws.send(messages.error("bad_rules", "send the rules as YAML text"))
                continue
            try:
                rules = parse_rules(message)
            except RulesError as exc:
                await ws.send(messages.error("bad_rules", str(exc)))
                continue
            record: RulesRecord = {"yaml": message, "saved_ts_us": time.time_ns() // 1000}
            writer = ctx.rules.writer
            if writer is None:
                await ws.send(messages.error("unavailable", "rules not saved: no rules topic"))
                continue
            try:
                await ctx.producer.produce(writer.topic, writer.key(record), writer.value(record))
            except (BufferError, DeliveryFailed) as exc:
                await ws.send(messages.error("unavailable", f"rules not saved: {exc}"))
                continue
            ctx.rules.text = message
            await ws.send(json.dumps({"type": "rules_saved", "streams": len(rules.streams)}))


def rules_feed(
    settings: Settings, ids: SchemaIds, ctx: GatewayContext, loop: asyncio.AbstractEventLoop
) -> Follow[str]:
    """The rules topic, from its start: the last record is the rules in force."""
    decoder = engine_topics(settings.topics).rules.reader(ids)

    def handle(_key: bytes | None, value: bytes) -> str:
        return decoder.decode(value)["yaml"]

    def publish(batch: list[str]) -> None:
        ctx.rules.text = batch[-1]

    def deliver(batch: list[str]) -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(publish, batch)

    return Follow(settings.topics.rules, handle, deliver, from_start=True)
