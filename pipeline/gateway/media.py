"""GET /v1/events/{event_id}/snapshot.jpg and clip.mp4: an event's best frame (its box
drawn, or cropped) and its stream's clip around it, read back from vae.frames.

The lookup and the scope check run on the event loop; reading the frames topic, drawing and
encoding run on the media threads, at most VAE_GATEWAY_MEDIA_CONCURRENCY at once (one more
request gets 503 with Retry-After at once: nothing queues) and each within
VAE_GATEWAY_MEDIA_TIMEOUT_S. Errors are JSON, ``{"error": code, "message": why}``.

Clips answer byte ranges (206; Safari plays an MP4 only so): the clips made last stay in a
cache (VAE_GATEWAY_CLIP_CACHE_MB), so every range a browser asks of one comes from the same
bytes, and only the first request reads and encodes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from typing import Any

from websockets.http11 import Response

from pipeline.auth.policy import may_see_event
from pipeline.auth.scopes import Grant
from pipeline.gateway.context import GatewayContext
from pipeline.gateway.event_index import EventRef
from pipeline.gateway.http import response
from pipeline.gateway.recording import Unavailable, clip_frames, clip_window, read_best_frame
from pipeline.kafka.partition_log import LogError, PartitionLog, ReadTimeout
from pipeline.media.clip import NoEncoder, encode_mp4, h264_encoder
from pipeline.media.snapshot import render_snapshot
from pipeline.protocol.ranges import Unsatisfiable, requested_range
from pipeline.protocol.routes import EventMedia
from pipeline.serde import AvroDecoder, FrameRecord, SchemaIds
from pipeline.topics import engine_topics

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


def error(status: int, code: str, message: str, **extra: str) -> Response:
    body = json.dumps({"error": code, "message": message}, separators=(",", ":"))
    return response(status, body, "application/json", **extra)


def ranged(answer: Response, range_header: str | None, if_range: str | None) -> Response:
    """A whole clip's answer cut to the byte range asked (206), 416 for one past its end, or
    the whole (200) for none, one not honoured, or an If-Range naming other bytes. Always a
    new Response: the cached one is never changed."""
    headers = answer.headers.copy()
    size = len(answer.body)
    if if_range is not None and if_range != answer.headers.get("ETag"):
        return Response(answer.status_code, answer.reason_phrase, headers, answer.body)
    try:
        asked = requested_range(range_header, size)
    except Unsatisfiable:
        refused = error(416, "range_not_satisfiable", f"the clip has {size} bytes")
        refused.headers["Content-Range"] = f"bytes */{size}"
        refused.headers["Accept-Ranges"] = "bytes"
        return refused
    if asked is None:
        return Response(answer.status_code, answer.reason_phrase, headers, answer.body)
    del headers["Content-Length"]
    headers["Content-Length"] = str(asked.length)
    headers["Content-Range"] = asked.content_range(size)
    body = answer.body[asked.start : asked.end + 1]
    return Response(206, "Partial Content", headers, body)


class ClipCache:
    """The clips made last, by event id, within a byte budget; the least recently used go
    first. Used on the event loop only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clips: OrderedDict[str, Response] = OrderedDict()

    def get(self, event_id: str) -> Response | None:
        found = self._clips.get(event_id)
        if found is not None:
            self._clips.move_to_end(event_id)
        return found

    def put(self, event_id: str, answer: Response) -> None:
        if len(answer.body) > self.max_bytes:
            return
        old = self._clips.pop(event_id, None)
        if old is not None:
            self.bytes -= len(old.body)
        self._clips[event_id] = answer
        self.bytes += len(answer.body)
        while self.bytes > self.max_bytes:
            _, evicted = self._clips.popitem(last=False)
            self.bytes -= len(evicted.body)


class MediaService:
    """Answers the media endpoints of one gateway."""

    def __init__(self, ctx: GatewayContext, ids: SchemaIds) -> None:
        self.ctx = ctx
        self.gw = ctx.settings.gateway
        self._frames = engine_topics(ctx.settings.topics).frames
        self._ids = ids
        self._executor = ThreadPoolExecutor(self.gw.media_concurrency, "media")
        self._active = 0
        self._local = threading.local()
        self._clips = ClipCache(self.gw.clip_cache_mb * 1024 * 1024)
        encoder = h264_encoder()
        if encoder is None:
            log.warning("no H.264 encoder in this PyAV build: clip.mp4 answers 501")
        else:
            log.info("event clips: H.264 by %s", encoder)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def respond(
        self,
        target: EventMedia,
        grant: Grant,
        range_header: str | None = None,
        if_range: str | None = None,
    ) -> Response:
        started = time.perf_counter()
        answer = await self._respond(target, grant)
        if target.kind == "clip" and answer.status_code == 200:
            answer = ranged(answer, range_header, if_range)
        metrics = self.ctx.metrics
        metrics.media_requests.labels(target.kind, str(answer.status_code)).inc()
        if answer.status_code in (200, 206):
            metrics.media_seconds.labels(target.kind).observe(time.perf_counter() - started)
        return answer

    async def _respond(self, target: EventMedia, grant: Grant) -> Response:
        ref = self.ctx.event_index.get(target.event_id)
        if ref is None or not may_see_event(grant, ref.stream_id):
            # The same answer for both: a token learns nothing of other streams' events.
            return error(
                404,
                "unknown_event",
                f"no event {target.event_id!r} here: unknown, older than this gateway's "
                "index of recent events, or of a stream this token may not watch",
            )
        if target.kind == "clip":
            cached = self._clips.get(target.event_id)
            if cached is not None:
                return cached
        if self._active >= self.gw.media_concurrency:
            return error(
                503,
                "busy",
                f"{self._active} snapshots or clips are being made (VAE_GATEWAY_MEDIA_"
                "CONCURRENCY): try again shortly",
                Retry_After=str(RETRY_AFTER_S),
            )
        self._active += 1
        self.ctx.metrics.media_in_flight.set(self._active)
        deadline = time.monotonic() + self.gw.media_timeout_s
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._make, target, ref, deadline)
        future.add_done_callback(self._release)  # the slot is held until the thread is done
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), self.gw.media_timeout_s + 0.5)
        except TimeoutError:
            return self._too_slow()
        if target.kind == "clip" and answer.status_code == 200:
            self._clips.put(target.event_id, answer)
        return answer

    def _release(self, _future: Any) -> None:
        self._active -= 1
        self.ctx.metrics.media_in_flight.set(self._active)

    def _too_slow(self) -> Response:
        return error(
            503,
            "timeout",
            f"not done within VAE_GATEWAY_MEDIA_TIMEOUT_S ({self.gw.media_timeout_s} s): the "
            "broker is slow, or the clip too long for this gateway (VAE_GATEWAY_CLIP_MAX_*)",
            Retry_After=str(RETRY_AFTER_S * 5),
        )

    def _decoder(self) -> AvroDecoder[FrameRecord]:
        decoder: AvroDecoder[FrameRecord] | None = getattr(self._local, "decoder", None)
        if decoder is None:
            decoder = self._local.decoder = self._frames.reader(self._ids)
        return decoder

    def _make(self, target: EventMedia, ref: EventRef, deadline: float) -> Response:
        """On a media thread: read, draw or encode; every failure becomes its answer."""
        try:
            with PartitionLog(self.ctx.settings.kafka, self._frames.name, ref.frame_partition) as p:
                if target.kind == "snapshot":
                    return self._snapshot(p, target, ref, deadline)
                return self._clip(p, ref, deadline)
        except Unavailable as exc:
            return error(exc.status, exc.code, exc.message)
        except (ReadTimeout, TimeoutError):
            return self._too_slow()
        except NoEncoder as exc:
            return error(501, "no_encoder", str(exc))
        except LogError as exc:
            return error(503, "broker", f"{self._frames.name} cannot be read: {exc}")
        except Exception:
            log.exception("event %s: %s failed", ref.event_id, target.kind)
            return error(500, "internal", "the media could not be made (see the gateway's log)")

    def _snapshot(
        self, log_: PartitionLog, target: EventMedia, ref: EventRef, deadline: float
    ) -> Response:
        retention = self.ctx.settings.topics.frames_retention_ms
        anchor = read_best_frame(
            log_, self._decoder(), ref, retention_ms=retention, deadline=deadline
        )
        caption = f"{ref.label} {ref.score:.2f}"
        image = render_snapshot(
            anchor.frame["image"], ref.box, caption, boxes=target.boxes, crop=target.crop
        )
        return response(
            200,
            image,
            "image/jpeg",
            X_Event_Id=ref.event_id,
            X_Stream_Id=ref.stream_id,
            X_Frame_Id=str(ref.frame_id),
            X_Frame_Capture_Ts_Us=str(anchor.frame["capture_ts_us"]),
            Access_Control_Expose_Headers="X-Event-Id, X-Stream-Id, X-Frame-Id, "
            "X-Frame-Capture-Ts-Us",
        )

    def _clip(self, log_: PartitionLog, ref: EventRef, deadline: float) -> Response:
        gw = self.gw
        retention = self.ctx.settings.topics.frames_retention_ms
        decoder = self._decoder()
        anchor = read_best_frame(log_, decoder, ref, retention_ms=retention, deadline=deadline)
        best_us = anchor.frame["capture_ts_us"]
        window = clip_window(ref, best_us, gw.clip_before_s, gw.clip_after_s, gw.clip_max_s)
        frames = clip_frames(
            log_, decoder, anchor, window, max_frames=gw.clip_max_frames, deadline=deadline
        )
        clip = encode_mp4(frames, max_width=gw.clip_max_width, deadline=deadline)
        return response(
            200,
            clip.data,
            "video/mp4",
            X_Event_Id=ref.event_id,
            X_Stream_Id=ref.stream_id,
            X_Clip_Frames=str(clip.frames),
            X_Clip_Start_Us=str(clip.first_us),
            X_Clip_End_Us=str(clip.last_us),
            X_Clip_Encoder=clip.encoder,
            Accept_Ranges="bytes",
            ETag=f'"{sha256(clip.data).hexdigest()[:32]}"',
            Access_Control_Expose_Headers="X-Event-Id, X-Stream-Id, X-Clip-Frames, "
            "X-Clip-Start-Us, X-Clip-End-Us, X-Clip-Encoder, Content-Range, ETag",
        )
