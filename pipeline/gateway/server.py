"""The gateway process: one port for WebSocket ingest/subscribe and plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import weakref
from collections.abc import Awaitable

from websockets import http11
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from pipeline.auth.scopes import Grant
from pipeline.config import Settings
from pipeline.gateway.access import Door, build_verifier, tls_context
from pipeline.gateway.analytics_feed import analytics_feeds
from pipeline.gateway.connection import GatewayConnection
from pipeline.gateway.context import GatewayContext, RulesState
from pipeline.gateway.event_index import EventIndex
from pipeline.gateway.fanout import FanoutHub
from pipeline.gateway.frame_history import FrameHistory
from pipeline.gateway.http import (
    StaticFiles,
    asks_peers,
    http_response,
    is_upgrade,
    peered_response,
    response,
)
from pipeline.gateway.ingest import handle_ingest
from pipeline.gateway.limits import Limits, peer_of, token_key
from pipeline.gateway.media import MediaService
from pipeline.gateway.peers import Holdings, PeerFrame, Peers
from pipeline.gateway.processes import PeerInfo, supervise
from pipeline.gateway.results import results_feed
from pipeline.gateway.rules import handle_rules, rules_feed
from pipeline.gateway.streams import StreamRegistry
from pipeline.gateway.subscribe import handle_subscribe
from pipeline.kafka import producer_config
from pipeline.kafka.admin import ensure_topics, missing_topics
from pipeline.kafka.producer import AsyncProducer
from pipeline.kafka.registry import schema_ids_from
from pipeline.kafka.tail import Tail
from pipeline.metrics import GatewayMetrics
from pipeline.protocol import messages, routes
from pipeline.protocol.routes import Route, route
from pipeline.runtime import time_gc_pauses, tune_gc_for_many_connections
from pipeline.topics import engine_topics

log = logging.getLogger(__name__)


async def _watch_readiness(ctx: GatewayContext, tail: Tail) -> None:
    """Ready = the broker answers, the topics exist, and the feeds are positioned."""
    loop = asyncio.get_running_loop()
    wanted = engine_topics(ctx.settings.topics).all()
    state = ctx.readiness
    while not ctx.closing.is_set():
        try:
            existing = await loop.run_in_executor(None, ctx.producer.list_topics, 2.0)
            missing = missing_topics(existing, wanted)
            if missing:
                state.ready, state.reason = False, f"topics missing: {', '.join(missing)}"
            elif not tail.ready.is_set():
                state.ready, state.reason = False, "feeds not positioned yet"
            else:
                state.ready, state.reason = True, "ready"
        except Exception as exc:  # any broker error means "not ready", with the reason shown
            state.ready, state.reason = False, f"broker unreachable: {exc}"
        # Gauges read from state (fresh at every scrape of any process, also with several).
        ctx.metrics.producer_queue.set(len(ctx.producer))
        ctx.metrics.frame_history_bytes.set(ctx.history.bytes)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.closing.wait(), 2.0 if state.ready else 0.25)
    state.ready, state.reason = False, "shutting down"


def apply_request_head_limits(max_line_bytes: int, max_headers: int) -> None:
    """websockets reads its request-head bounds from module globals (set from its own
    WEBSOCKETS_MAX_LINE_LENGTH / WEBSOCKETS_MAX_NUM_HEADERS at import): set them here."""
    http11.MAX_LINE_LENGTH = max_line_bytes
    http11.MAX_NUM_HEADERS = max_headers


def _holdings(ctx: GatewayContext) -> Holdings:
    """What this process shows its sibling processes: held frames, latest frames, streams."""

    def frame(stream_id: str, frame_id: int) -> PeerFrame | None:
        held = ctx.history.get(stream_id, frame_id)
        return None if held is None else PeerFrame(held.frame_id, held.ts_us, held.image)

    def latest(stream_id: str) -> PeerFrame | None:
        state = ctx.streams.get(stream_id)
        if state is None or not state.image:
            return None
        return PeerFrame(state.frame_id, state.frame_ts_us, state.image)

    return Holdings(frame, latest, ctx.streams.summaries, ctx.hub.watched)


async def _start_peers(ctx: GatewayContext, peer: PeerInfo) -> Peers:
    """Join the sibling processes (VAE_GATEWAY_PROCESSES): watched streams, frames."""
    peers = Peers(peer.index, [peer.socket(i) for i in range(peer.count)], _holdings(ctx))
    await peers.start()
    ctx.peers, ctx.process = peers, peer.index
    ctx.hub.on_watch_change = peers.watched_changed
    local = ctx.hub.watches
    ctx.history.watched = lambda stream_id: local(stream_id) or peers.watches(stream_id)
    try:
        async with asyncio.timeout(10.0):
            await peers.connected()
    except TimeoutError:  # they start together; go on, the links keep retrying
        log.warning("gateway process %d: not every sibling answers yet", peer.index)
    return peers


async def serve_gateway(
    settings: Settings, stop: asyncio.Event, peer: PeerInfo | None = None
) -> None:
    """Run a gateway until ``stop`` is set, then drain sockets and flush the producer.

    ``peer``: this process is one of VAE_GATEWAY_PROCESSES on the port (SO_REUSEPORT).
    """
    loop = asyncio.get_running_loop()
    gw = settings.gateway
    verifier = await loop.run_in_executor(None, build_verifier, settings.auth)
    tls = tls_context(gw)
    ids = await loop.run_in_executor(
        None, schema_ids_from, settings.schema_registry.url, settings.schema_registry.basic_auth
    )
    topics = engine_topics(settings.topics)
    if settings.topics.create:
        await loop.run_in_executor(None, ensure_topics, settings.kafka, topics.all())
    producer = AsyncProducer(
        producer_config(
            settings.kafka,
            "gateway",
            linger_ms=gw.linger_ms,
            max_message_bytes=settings.topics.max_message_bytes,
            queue_kbytes=gw.producer_queue_kbytes,
        ),
        loop,
    )
    hub = FanoutHub()
    ctx = GatewayContext(
        settings=settings,
        producer=producer,
        frames=await loop.run_in_executor(None, topics.frames.writer, ids),
        metrics=GatewayMetrics(),
        hub=hub,
        streams=StreamRegistry(gw.latest_frames),
        history=FrameHistory(gw.frame_history, gw.frame_history_mbytes * 1_048_576, hub.watches),
        rules=RulesState(await loop.run_in_executor(None, topics.rules.writer, ids)),
        event_index=EventIndex(gw.events_index),
    )
    media = MediaService(ctx, ids)
    static = StaticFiles(gw.web_root)
    door = Door(verifier, gw.allowed_origins, ctx.metrics)
    limits = Limits(gw, ctx.metrics)
    ctx.rates = limits.rates
    apply_request_head_limits(gw.max_header_line_bytes, gw.max_headers)
    # The grant each accepted handshake acts under, from process_request to the handler.
    grants: weakref.WeakKeyDictionary[ServerConnection, Grant] = weakref.WeakKeyDictionary()
    refresher = (
        asyncio.create_task(door.refresh_jwks(settings.auth.jwks_url, ctx.closing))
        if verifier is not None and settings.auth.jwks_url
        else None
    )
    tune_gc_for_many_connections(gw.gc_young_threshold)
    untime_gc = time_gc_pauses(ctx.metrics.gc_paused)
    # One consumer follows every topic the gateway serves (one stream of fetches).
    tail = Tail(
        settings.kafka,
        [
            results_feed(settings, ids, ctx, loop),
            *analytics_feeds(settings, ids, ctx, loop),
            rules_feed(settings, ids, ctx, loop),
        ],
    )
    tail.start()
    peers = await _start_peers(ctx, peer) if peer is not None else None
    watcher = asyncio.create_task(_watch_readiness(ctx, tail))

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        target = route(ws.request.path)
        grant = grants.pop(ws, None)
        key = token_key(ws.request) if isinstance(target, routes.Subscribe) else None
        if key is not None:
            limits.per_token[key] += 1
        try:
            await _serve(ws, target, grant)
        finally:
            if key is not None:
                limits.per_token[key] -= 1
                if limits.per_token[key] <= 0:
                    del limits.per_token[key]

    async def _serve(ws: ServerConnection, target: Route, grant: Grant | None) -> None:
        if grant is None:  # every handshake passes the door first; never reached
            await ws.close(CloseCode.POLICY_VIOLATION, "not authorised")
        elif isinstance(target, routes.Ingest) and isinstance(ws, GatewayConnection):
            await handle_ingest(ws, target, ctx)
        elif isinstance(target, routes.Subscribe | routes.Events):
            await handle_subscribe(ws, target, ctx, grant)
        elif isinstance(target, routes.RulesEdit):
            await handle_rules(ws, ctx)
        elif isinstance(target, routes.BadRequest):
            await ws.send(messages.error("bad_request", target.message))
            await ws.close(CloseCode.POLICY_VIOLATION, target.message[:120])
        else:
            await ws.close(CloseCode.POLICY_VIOLATION, "not a WebSocket endpoint")

    def process_request(
        connection: ServerConnection, request: Request
    ) -> Response | Awaitable[Response] | None:
        over = limits.connection_over(peer_of(connection))
        if over is not None:
            limits.refuse(over)
            return response(503, f"too many connections ({over}): try again later\n")
        target = route(request.path)
        upgrade = is_upgrade(request)
        if (
            upgrade
            and isinstance(target, routes.Subscribe)
            and limits.subscriber_over(token_key(request))
        ):
            limits.refuse("subscribers_per_token")
            return response(429, "too many subscribers with this token\n")
        checked = door.check(request, target, upgrade)
        if isinstance(checked, Response):
            return checked
        grants[connection] = checked
        if isinstance(target, routes.EventMedia) and not upgrade:
            # Read back from vae.frames off the loop: any process can answer (each keeps
            # its own event index, filled from the events topic).
            return media.respond(
                target, checked, request.headers.get("Range"), request.headers.get("If-Range")
            )
        if isinstance(target, routes.Http) and asks_peers(target, ctx):
            return peered_response(target, ctx, checked)
        return http_response(request, target, ctx, static, checked)

    def process_response(
        _connection: ServerConnection, _request: Request, answer: Response
    ) -> None:
        answer.headers["X-Gateway-Process"] = str(ctx.process)

    async with serve(
        handler,
        gw.host,
        gw.port,
        process_request=process_request,
        process_response=process_response if peer is not None else None,
        reuse_port=peer is not None,  # the sibling processes listen on the same port
        ssl=tls,  # https:// and wss:// on the same port when a certificate is set
        # Oversize frames up to twice the limit are read and refused with an error
        # message (the socket stays open); beyond that websockets closes with 1009.
        max_size=max(2 * gw.max_frame_bytes, gw.max_frame_bytes + 1_048_576),
        compression=None,  # JPEG doesn't compress; deflate would only cost CPU
        open_timeout=gw.handshake_timeout_s,
        create_connection=limits.connection_class(),
        close_timeout=5,
    ) as server:
        ports = sorted({s.getsockname()[1] for s in server.sockets})
        scheme = "https/wss" if tls else "http/ws"
        log.info("gateway listening on %s:%s (%s)", gw.host, ",".join(map(str, ports)), scheme)
        await stop.wait()
        log.info("gateway stopping: closing sockets, flushing the producer")
        ctx.closing.set()
        server.close(close_connections=True)
        await server.wait_closed()
    await watcher
    if peers is not None:
        await peers.stop()
    if refresher is not None:
        await refresher
    media.close()
    undelivered = await loop.run_in_executor(None, producer.close, 10.0)
    if undelivered:
        log.warning("%d frames were still undelivered at shutdown", undelivered)
    tail.stop()
    untime_gc()


def run_gateway(settings: Settings) -> int:
    """Entry point of `vae gateway`: uvloop, signal handling, serve until SIGINT/SIGTERM;
    with VAE_GATEWAY_PROCESSES above 1, the parent of that many gateway processes."""
    peer = PeerInfo.from_env(os.environ)
    if peer is None and settings.gateway.processes > 1:
        return supervise(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_gateway(settings, stop, peer)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a dependency on every platform we ship
        asyncio.run(main())
    return 0
