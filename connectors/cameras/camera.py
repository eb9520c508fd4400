"""One camera's loop: a decoding thread that reconnects forever, and a sender task.

The thread (connectors.cameras.decode) reopens the camera with jittered exponential backoff
whenever it drops or never answers; it shares nothing with other cameras but the event loop
it hands frames to. Between the two a queue of ``QUEUE_FRAMES`` frames: a live camera does
not wait for a slow gateway, so when full the oldest frame is dropped (and counted). The
sender pushes frames over the ingest WebSocket with the VAE1 envelope, reconnecting to the
gateway with backoff too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from client.ingest import GatewayError, IngestClient
from connectors.cameras.config import CameraConfig
from connectors.cameras.decode import DecodedFrame, Decoder

log = logging.getLogger(__name__)

QUEUE_FRAMES = 4
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0

CONNECTING, STREAMING, BACKING_OFF, DISABLED = "connecting", "streaming", "backing_off", "disabled"
STATES = (CONNECTING, STREAMING, BACKING_OFF, DISABLED)


def backoff_delay(
    attempt: int, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S
) -> float:
    """Jittered exponential backoff: between half and all of ``first * 2**attempt``, capped."""
    ceiling = min(cap, first * 2 ** min(attempt, 30))
    return random.uniform(ceiling / 2, ceiling)


@dataclass
class CameraHealth:
    """What /metrics and the status endpoint say about one camera."""

    state: str = CONNECTING
    last_frame_mono: float | None = None
    reconnects: int = 0
    decode_errors: int = 0
    frames_decoded: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    gateway_connected: bool = False
    last_error: str = ""
    retry_in_s: float = 0.0
    started_mono: float = field(default_factory=time.monotonic)

    def last_frame_age_s(self) -> float | None:
        if self.last_frame_mono is None:
            return None
        return time.monotonic() - self.last_frame_mono

    def to_json(self) -> dict[str, Any]:
        age = self.last_frame_age_s()
        return {
            "state": self.state,
            "last_frame_age_s": None if age is None else round(age, 3),
            "reconnects": self.reconnects,
            "decode_errors": self.decode_errors,
            "frames_decoded": self.frames_decoded,
            "frames_sent": self.frames_sent,
            "frames_dropped": self.frames_dropped,
            "gateway_connected": self.gateway_connected,
            "last_error": self.last_error,
            "retry_in_s": round(self.retry_in_s, 3),
        }


class Camera:
    """Runs one camera from ``start()`` until ``stop()``; touches no other camera."""

    def __init__(self, config: CameraConfig, gateway: str) -> None:
        self.config = config
        self.gateway = gateway
        self.health = CameraHealth(state=CONNECTING if config.enabled else DISABLED)
        self._queue: asyncio.Queue[DecodedFrame] = asyncio.Queue(QUEUE_FRAMES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sender: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if not self.config.enabled:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._decode_forever, name=f"camera-{self.config.id}", daemon=True
        )
        self._thread.start()
        self._sender = asyncio.create_task(self._send_forever(), name=f"send-{self.config.id}")

    async def stop(self) -> None:
        """Stop sending at once; the thread ends within one read timeout (it is a daemon)."""
        self._stop.set()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    # --- the decoding thread -------------------------------------------------------------

    def _decode_forever(self) -> None:
        attempt = 0
        decoder = Decoder(
            self.config, self._stop, self._opened, self._from_thread, self._decode_error
        )
        while not self._stop.is_set():
            self.health.state = CONNECTING
            self.health.retry_in_s = 0.0
            frames_before = self.health.frames_decoded
            try:
                decoder.run_once()
            except Exception as exc:
                self.health.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if self._stop.is_set():
                return
            if self.health.frames_decoded > frames_before:
                attempt = 0  # it streamed: start the backoff over
            delay = backoff_delay(attempt)
            attempt += 1
            self.health.reconnects += 1
            self.health.state = BACKING_OFF
            self.health.retry_in_s = delay
            log.warning(
                "camera %s: %s; retrying in %.1f s", self.config.id, self.health.last_error, delay
            )
            self._stop.wait(delay)

    def _opened(self) -> None:
        self.health.state = STREAMING
        self.health.last_error = ""
        log.info("camera %s: streaming from %s", self.config.id, self.config.url)

    def _decode_error(self) -> None:
        self.health.decode_errors += 1

    def _from_thread(self, frame: DecodedFrame) -> None:
        self.health.frames_decoded += 1
        self.health.last_frame_mono = time.monotonic()
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed under us: stopping
                self._loop.call_soon_threadsafe(self._enqueue, frame)

    def _enqueue(self, frame: DecodedFrame) -> None:
        """On the loop: a full queue drops its oldest frame (a live camera never waits)."""
        if self._queue.full():
            self._queue.get_nowait()
            self.health.frames_dropped += 1
        self._queue.put_nowait(frame)

    # --- the sender task -----------------------------------------------------------------

    async def _send_forever(self) -> None:
        attempt = 0
        frame_id = 0
        while True:
            try:
                async with IngestClient(self.gateway, self.config.id) as ingest:
                    self.health.gateway_connected = True
                    attempt = 0
                    reader = asyncio.create_task(self._read_replies(ingest))
                    try:
                        while True:
                            frame = await self._queue.get()
                            await ingest.send(frame.jpeg, frame_id, frame.capture_ts_us)
                            frame_id += 1
                            self.health.frames_sent += 1
                    finally:
                        reader.cancel()
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, GatewayError) as exc:
                self.health.gateway_connected = False
                delay = backoff_delay(attempt)
                attempt += 1
                log.warning(
                    "camera %s: gateway %s unavailable (%s); retrying in %.1f s",
                    self.config.id,
                    self.gateway,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _read_replies(self, ingest: IngestClient) -> None:
        """Without acks the gateway only speaks to refuse a frame: log why."""
        while True:
            try:
                await ingest.receive()
            except GatewayError as exc:
                log.warning("camera %s: gateway refused a frame: %s", self.config.id, exc)
