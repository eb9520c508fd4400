"""Plain HTTP on the WebSocket port: health, readiness, metrics, stream list, viewer files."""

from __future__ import annotations

import email.utils
import json
import logging
import mimetypes
import time
from http import HTTPStatus
from importlib import resources
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from pipeline.auth.scopes import Grant
from pipeline.gateway.context import GatewayContext
from pipeline.gateway.streams import merge_summaries
from pipeline.protocol.routes import BadRequest, Http, Route, RulesEdit

log = logging.getLogger(__name__)


def response(
    status: int, body: bytes | str, content_type: str = "text/plain; charset=utf-8", **extra: str
) -> Response:
    data = body.encode() if isinstance(body, str) else body
    code = HTTPStatus(status)
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(data))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
        ]
    )
    for name, value in extra.items():
        headers[name.replace("_", "-")] = value
    return Response(code.value, code.phrase, headers, data)


class StaticFiles:
    """The viewer's files, read once at start (the event loop never touches the disk)."""

    def __init__(self, root: str = "") -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        if root:
            base = Path(root)
            paths = [p for p in base.rglob("*") if p.is_file()]
            for path in paths:
                self._add("/" + path.relative_to(base).as_posix(), path.read_bytes())
        else:
            self._walk(resources.files("pipeline.gateway").joinpath("web"), "")
        if "/index.html" in self.files:
            self.files["/"] = self.files["/index.html"]

    def _walk(self, folder: resources.abc.Traversable, prefix: str) -> None:
        if not folder.is_dir():
            return
        for entry in folder.iterdir():
            if entry.is_dir():
                self._walk(entry, f"{prefix}/{entry.name}")
            elif not entry.name.startswith("."):
                self._add(f"{prefix}/{entry.name}", entry.read_bytes())

    def _add(self, url_path: str, data: bytes) -> None:
        kind = mimetypes.guess_type(url_path)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        if url_path.endswith(".js"):
            kind = "text/javascript; charset=utf-8"
        self.files[url_path] = (data, kind)

    def get(self, path: str) -> tuple[bytes, str] | None:
        return self.files.get(path)


def frame_response(image: bytes, frame_id: int, ts_us: int) -> Response:
    """A JPEG frame with its id and gateway receive time (detections carry the same two)."""
    return response(
        200,
        image,
        "image/jpeg",
        X_Frame_Id=str(frame_id),
        X_Frame_Ts_Us=str(ts_us),
        Access_Control_Expose_Headers="X-Frame-Id, X-Frame-Ts-Us",
    )


def is_upgrade(request: Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def http_response(
    request: Request, target: Route, ctx: GatewayContext, static: StaticFiles, grant: Grant
) -> Response | None:
    """The HTTP response for a request, or None to go on with the WebSocket handshake.

    ``grant``: what the request's token allows (pipeline.gateway.access checked it may
    use ``target``); the stream listing shows only the streams it may watch.
    """
    if isinstance(target, BadRequest):
        if target.websocket and is_upgrade(request):
            return None  # accept, then explain on the socket (browsers can't read a 400 body)
        return response(target.status, target.message + "\n")
    if isinstance(target, RulesEdit) and not is_upgrade(request):
        if not ctx.rules.text:
            return response(404, "no rules saved through the gateway yet\n")
        if target.json:
            return response(200, ctx.rules.as_json(), "application/json")
        return response(200, ctx.rules.text, "application/yaml; charset=utf-8")
    if not isinstance(target, Http):
        if is_upgrade(request):
            return None
        return response(426, "this endpoint is a WebSocket: connect with a WebSocket client\n")
    if target.name == "healthz":
        return response(200, "ok\n")
    if target.name == "readyz":
        state = ctx.readiness
        return response(200 if state.ready else 503, state.reason + "\n")
    if target.name == "metrics":
        ctx.metrics.producer_queue.set(len(ctx.producer))
        ctx.metrics.frame_history_bytes.set(ctx.history.bytes)
        return response(200, ctx.metrics.exposition(), CONTENT_TYPE_LATEST)
    if target.name == "streams":
        # now_us: the gateway's clock, so a viewer can judge staleness and latency without
        # trusting its own clock.
        visible = [s for s in ctx.streams.summaries() if grant.may_subscribe(str(s["stream_id"]))]
        listing = {"now_us": time.time_ns() // 1000, "streams": visible}
        return response(200, json.dumps(listing, separators=(",", ":")), "application/json")
    if target.name == "latest" and target.stream_id is not None:
        stream = ctx.streams.get(target.stream_id)
        if stream is None or not stream.image:
            return response(404, f"no frame received for stream {target.stream_id!r}\n")
        return frame_response(stream.image, stream.frame_id, stream.frame_ts_us)
    if target.name == "counts" and target.stream_id is not None:
        summary = ctx.counts.summary(target.stream_id)
        if summary is None:
            summary = {"stream_id": target.stream_id, "totals": [], "windows": []}
        return response(200, json.dumps(summary, separators=(",", ":")), "application/json")
    if target.name == "frame" and target.stream_id is not None and target.frame_id is not None:
        held = ctx.history.get(target.stream_id, target.frame_id)
        if held is None:
            return response(404, f"frame {target.frame_id} of {target.stream_id!r} is not held\n")
        return frame_response(held.image, held.frame_id, held.ts_us)
    if target.name == "static" and target.file is not None:
        found = static.get(target.file)
        if found is None:
            return response(404, f"not found: {target.file}\n")
        return response(200, found[0], found[1])
    return response(404, "not found\n")


# What a process may hold for another: asked of the siblings when it is not held here.
PEERED = frozenset({"frame", "latest", "streams"})


def asks_peers(target: Route, ctx: GatewayContext) -> bool:
    """Whether the answer may live in a sibling process (VAE_GATEWAY_PROCESSES > 1)."""
    return ctx.peers is not None and isinstance(target, Http) and target.name in PEERED


async def peered_response(target: Http, ctx: GatewayContext, grant: Grant) -> Response:
    """``http_response`` for the frame, latest-frame and stream-list endpoints when the
    frames of a stream may be held by another gateway process of this port."""
    peers = ctx.peers
    assert peers is not None
    sid = target.stream_id or ""
    if target.name == "frame" and target.frame_id is not None:
        held = ctx.history.get(sid, target.frame_id)
        if held is not None:
            return frame_response(held.image, held.frame_id, held.ts_us)
        remote = await peers.frame(sid, target.frame_id)
        if remote is None:
            return response(404, f"frame {target.frame_id} of {sid!r} is not held\n")
        return frame_response(remote.image, remote.frame_id, remote.ts_us)
    if target.name == "latest":
        remote = await peers.latest(sid)
        stream = ctx.streams.get(sid)
        if (
            stream is not None
            and stream.image
            and (remote is None or stream.frame_ts_us >= remote.ts_us)
        ):
            return frame_response(stream.image, stream.frame_id, stream.frame_ts_us)
        if remote is None:
            return response(404, f"no frame received for stream {sid!r}\n")
        return frame_response(remote.image, remote.frame_id, remote.ts_us)
    summaries = merge_summaries([*ctx.streams.summaries(), *await peers.streams()])
    visible = [s for s in summaries if grant.may_subscribe(str(s["stream_id"]))]
    listing = {"now_us": time.time_ns() // 1000, "streams": visible}
    return response(200, json.dumps(listing, separators=(",", ":")), "application/json")
