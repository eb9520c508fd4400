"""Push frames to `WS /v1/ingest/{stream_id}`, with the VAE1 envelope and optional acks."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from client.credentials import auth_headers
from pipeline.protocol.envelope import build_envelope


@dataclass(frozen=True, slots=True)
class Ack:
    """The gateway's acknowledgement of one frame."""

    frame_id: int
    gateway_latency_ms: float
    partition: int
    offset: int
    broker_ms: float = 0.0  # the broker's share of gateway_latency_ms


class GatewayError(RuntimeError):
    """The gateway refused a frame; ``code`` is its machine-readable reason."""

    def __init__(self, code: str, message: str, frame_id: int | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.frame_id = frame_id


def _http_base(url: str) -> str:
    return url.rstrip("/")


class IngestClient:
    """One camera's connection. ``async with IngestClient(url, "cam-1") as cam: ...``."""

    def __init__(
        self,
        gateway_url: str,
        stream_id: str,
        *,
        ack: bool = False,
        ordered: bool = False,
        token: str = "",
        **ws_options: Any,
    ):
        """``token``: sent as ``Authorization: Bearer``; empty: found (client.credentials).
        ``ordered``: a refusal that may pass ends the socket (the gateway reads nothing after
        the refused frame, acks the frames before it, then closes with 1013)."""
        flags = [name for name, on in (("ack", ack), ("ordered", ordered)) if on]
        query = "?" + "&".join(f"{name}=1" for name in flags) if flags else ""
        self.url = f"{_http_base(gateway_url)}/v1/ingest/{stream_id}{query}"
        self.stream_id = stream_id
        self.ack = ack
        self._ws_options = {
            "max_size": 2**20,
            "compression": None,
            "additional_headers": auth_headers(token),
            **ws_options,
        }
        self._ws: ClientConnection | None = None
        self.hello: dict[str, Any] = {}

    async def __aenter__(self) -> IngestClient:
        self._ws = await connect(self.url, **self._ws_options)
        self.hello = json.loads(await self._ws.recv())
        if self.hello.get("type") == "error":
            raise GatewayError(self.hello["code"], self.hello["message"], None)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._ws is not None:
            await self._ws.close()

    @property
    def ws(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("not connected: use `async with IngestClient(...)`")
        return self._ws

    async def send(
        self, jpeg: bytes, frame_id: int | None = None, capture_ts_us: int | None = None
    ) -> None:
        """Send one frame; with a frame id the envelope carries it and the capture time."""
        if frame_id is None:
            await self.ws.send(jpeg)
        else:
            capture = capture_ts_us if capture_ts_us is not None else time.time_ns() // 1000
            await self.ws.send(build_envelope(frame_id, capture, jpeg))

    async def receive(self) -> Ack:
        """The next reply: an Ack, or GatewayError raised for a refusal."""
        body = json.loads(await self.ws.recv())
        if body["type"] == "ack":
            return Ack(
                body["frame_id"],
                body["gateway_latency_ms"],
                body["partition"],
                body["offset"],
                body.get("broker_ms", 0.0),
            )
        if body["type"] == "error":
            raise GatewayError(body["code"], body["message"], body.get("frame_id"))
        raise GatewayError("unexpected", f"unexpected message {body!r}", None)
