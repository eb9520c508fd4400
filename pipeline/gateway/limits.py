"""Limits that keep one client from hurting the rest: connections in all and per client
address, subscribers per token, frames per second per stream (a token bucket), the
handshake's time and the request head's size. Each refusal is counted by its limit."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from pipeline.auth.policy import token_of
from pipeline.config import GatewaySettings
from pipeline.gateway.connection import GatewayConnection
from pipeline.metrics import GatewayMetrics


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; one token per frame."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    users: int = 0  # ingest sockets of this stream sharing the bucket

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class FrameRates:
    """One token bucket per stream being ingested (shared by its sockets, gone with them)."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self._buckets: dict[str, TokenBucket] = {}

    def open(self, stream_id: str) -> None:
        if self.fps <= 0:
            return
        bucket = self._buckets.get(stream_id)
        if bucket is None:
            bucket = self._buckets[stream_id] = TokenBucket(self.fps, max(1.0, self.fps))
        bucket.users += 1

    def close(self, stream_id: str) -> None:
        bucket = self._buckets.get(stream_id)
        if bucket is not None:
            bucket.users -= 1
            if bucket.users <= 0:
                del self._buckets[stream_id]

    def allow(self, stream_id: str) -> bool:
        bucket = self._buckets.get(stream_id)
        return bucket is None or bucket.take(time.monotonic())


def peer_of(connection: ServerConnection) -> str:
    address = connection.transport.get_extra_info("peername")
    return str(address[0]) if address else "?"


class Limits:
    """Counts what is open and says when a new request goes over a limit."""

    def __init__(self, gateway: GatewaySettings, metrics: GatewayMetrics) -> None:
        self.settings = gateway
        self.metrics = metrics
        self.total = 0
        self.per_client: Counter[str] = Counter()
        self.per_token: Counter[str] = Counter()
        self.rates = FrameRates(gateway.max_fps_per_stream)

    def refuse(self, limit: str) -> None:
        self.metrics.limited.labels(limit).inc()

    def connection_over(self, peer: str) -> str | None:
        """The limit an open connection from ``peer`` goes over, or None."""
        gw = self.settings
        if gw.max_connections and self.total > gw.max_connections:
            return "connections"
        if gw.max_connections_per_client and self.per_client[peer] > gw.max_connections_per_client:
            return "connections_per_client"
        return None

    def subscriber_over(self, token_key: str) -> bool:
        cap = self.settings.max_subscribers_per_token
        return bool(cap) and self.per_token[token_key] >= cap

    def connection_class(self) -> type[GatewayConnection]:
        """A connection that counts itself open and closed, and its bad handshakes."""
        limits = self
        timeout = self.settings.handshake_timeout_s

        class LimitedConnection(GatewayConnection):
            peer = "?"
            opened = 0.0

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                self.peer = peer_of(self)
                self.opened = time.monotonic()
                limits.total += 1
                limits.per_client[self.peer] += 1

            def connection_lost(self, exc: Exception | None) -> None:
                super().connection_lost(exc)
                limits.total -= 1
                limits.per_client[self.peer] -= 1
                if limits.per_client[self.peer] <= 0:
                    del limits.per_client[self.peer]

            async def handshake(self, *args: object, **kwargs: object) -> None:
                try:
                    await super().handshake(*args, **kwargs)  # type: ignore[arg-type]
                except asyncio.CancelledError:
                    if self.request is None and time.monotonic() - self.opened >= timeout * 0.9:
                        limits.refuse("handshake_timeout")  # a trickled or silent request
                    raise
                if self.request is None and self.protocol.handshake_exc is not None:
                    limits.refuse("request_head")  # too long a line, too many headers, garbage

        return LimitedConnection


def token_key(request: Request) -> str:
    """What identifies a token for the per-token subscriber count (never logged)."""
    return token_of(request.headers.get("Authorization"), request.path) or ""
