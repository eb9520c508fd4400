"""WS /v1/subscribe?streams=a,b|* (the live detections feed) and WS /v1/events (the
analytics' events and counts), as JSON text messages, each subscriber behind its own
bounded, drop-oldest queue."""

from __future__ import annotations

import asyncio
import contextlib
import json

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from pipeline.auth.scopes import Grant
from pipeline.gateway.context import GatewayContext
from pipeline.gateway.fanout import FanoutHub, Subscriber
from pipeline.protocol import messages
from pipeline.protocol.routes import Events, Subscribe


async def _pump(ws: ServerConnection, subscriber: Subscriber, ctx: GatewayContext) -> None:
    """Write queued messages to the socket; a slow socket only backs up its own queue."""
    while True:
        message = await subscriber.next()
        dropped = subscriber.take_dropped()
        if dropped:
            await ws.send(json.dumps({"type": "dropped", "count": dropped}))
        await ws.send(message)
        ctx.metrics.messages_sent.inc()


async def handle_subscribe(
    ws: ServerConnection, route: Subscribe | Events, ctx: GatewayContext, grant: Grant
) -> None:
    """Register the socket with its hub until it closes.

    Named streams were checked against the token at the handshake; a ``*`` subscription
    sees only the streams the token may watch (all of them with ``subscribe:*``).
    """
    hub: FanoutHub = ctx.hub if isinstance(route, Subscribe) else ctx.analytics_hub
    endpoint = "subscribe" if isinstance(route, Subscribe) else "events"
    visible = None if grant.may_subscribe_all() else grant.may_subscribe
    subscriber = Subscriber(route.streams, ctx.settings.gateway.subscriber_queue, visible)
    hub.add(subscriber)
    ctx.metrics.subscribers.inc()
    streams = sorted(route.streams) if route.streams is not None else "*"
    pump = asyncio.create_task(_pump(ws, subscriber, ctx))
    try:
        await ws.send(messages.hello(endpoint, streams=streams))
        # Nothing is expected from a subscriber; reading keeps pings and close frames flowing.
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    finally:
        hub.remove(subscriber)
        ctx.metrics.subscribers.dec()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await pump
