"""What the gateway processes of one port share (VAE_GATEWAY_PROCESSES > 1): over Unix
sockets in the parent's run folder, each child answers its siblings and asks them.

A camera's frames live in the memory of the process its socket landed on, and a viewer's
requests land on any process. So:

* **watched streams**: a process tells its siblings which streams its subscribers name
  (the whole set, whenever it changes and on every (re)connection), and keeps the recent
  frames of a stream any process's subscriber watches (``watches``);
* **frames** (``GET /v1/streams/{id}/frames/{n}.jpg``) and the **latest frame**
  (``latest.jpg``): a process that does not hold the frame asks its siblings; for the
  latest, every sibling, and the newest wins;
* the **stream listing** (``GET /v1/streams``) merges every process's streams.

A miss costs one round trip to each sibling (local, well under a millisecond when they
are idle); a sibling that does not answer within ``QUERY_TIMEOUT_S`` counts as not
holding it. Detections, tracks, events, counts and rules need nothing here: every
process follows those topics itself.

Wire: each message is ``>II`` (header length, body length), a JSON header, the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

QUERY_TIMEOUT_S = 1.0
RECONNECT_S = 0.5
WATCH_DEBOUNCE_S = 0.02
_SIZES = struct.Struct(">II")


@dataclass(frozen=True, slots=True)
class PeerFrame:
    """A frame a process holds: its id, gateway receive time and JPEG."""

    frame_id: int
    ts_us: int
    image: bytes


class Holdings:
    """What this process answers its siblings with (the gateway fills it in)."""

    def __init__(
        self,
        frame: Callable[[str, int], PeerFrame | None],
        latest: Callable[[str], PeerFrame | None],
        streams: Callable[[], list[dict[str, Any]]],
        watched: Callable[[], list[str]],
    ) -> None:
        self.frame = frame
        self.latest = latest
        self.streams = streams
        self.watched = watched


async def _read(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    head_size, body_size = _SIZES.unpack(await reader.readexactly(_SIZES.size))
    head = json.loads(await reader.readexactly(head_size))
    body = await reader.readexactly(body_size) if body_size else b""
    return head, body


def _message(head: dict[str, Any], body: bytes = b"") -> bytes:
    encoded = json.dumps(head, separators=(",", ":")).encode()
    return _SIZES.pack(len(encoded), len(body)) + encoded + body


class _Link:
    """This process's connection to one sibling: queries out, answers back, reconnecting."""

    def __init__(self, index: int, path: Path, watched: Callable[[], list[str]]) -> None:
        self.index = index
        self.path = path
        self._watched = watched
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[tuple[dict[str, Any], bytes]]] = {}
        self._next_id = 0
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError:
                await asyncio.sleep(RECONNECT_S)  # the sibling is (re)starting
                continue
            self._writer = writer
            self.send_watched()
            self.connected.set()
            try:
                while True:
                    head, body = await _read(reader)
                    waiter = self._waiting.pop(int(head.get("id", -1)), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result((head, body))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass
            finally:
                self.connected.clear()
                self._writer = None
                writer.close()
                for waiter in self._waiting.values():
                    if not waiter.done():
                        waiter.set_result(({}, b""))
                self._waiting.clear()
            await asyncio.sleep(RECONNECT_S)

    def send_watched(self) -> None:
        if self._writer is not None:
            self._writer.write(_message({"op": "watch", "streams": self._watched()}))

    async def ask(self, head: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The sibling's answer, or ({}, b"") if it is not connected or too slow."""
        if self._writer is None:
            return {}, b""
        self._next_id += 1
        query_id = self._next_id
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[query_id] = waiter
        self._writer.write(_message({**head, "id": query_id}))
        try:
            return await asyncio.wait_for(waiter, QUERY_TIMEOUT_S)
        except TimeoutError:
            return {}, b""
        finally:
            self._waiting.pop(query_id, None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Peers:
    """This process's view of its siblings."""

    def __init__(self, index: int, sockets: list[Path], holdings: Holdings) -> None:
        self.index = index
        self._path = sockets[index]
        self._holdings = holdings
        self._links = [
            _Link(i, path, holdings.watched) for i, path in enumerate(sockets) if i != index
        ]
        # Streams each connected sibling's subscribers name, by the connection it came on.
        self._remote: dict[int, frozenset[str]] = {}
        self._server: asyncio.Server | None = None
        self._accepted: set[asyncio.StreamWriter] = set()
        self._announce: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        self._path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, str(self._path))
        for link in self._links:
            link.start()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._accepted):
            writer.close()
        for link in self._links:
            await link.stop()
        self._path.unlink(missing_ok=True)

    async def connected(self) -> None:
        """Wait until every sibling is connected."""
        for link in self._links:
            await link.connected.wait()

    # --- watched streams ---------------------------------------------------------------

    def watches(self, stream_id: str) -> bool:
        """Whether a sibling's subscriber names this stream."""
        return any(stream_id in streams for streams in self._remote.values())

    def watched_changed(self) -> None:
        """Our subscribers' named streams changed: tell the siblings (changes close together
        go out once)."""
        if self._announce is None:
            loop = asyncio.get_running_loop()
            self._announce = loop.call_later(WATCH_DEBOUNCE_S, self._send_watched)

    def _send_watched(self) -> None:
        self._announce = None
        for link in self._links:
            link.send_watched()

    # --- queries -----------------------------------------------------------------------

    async def _ask_all(self, head: dict[str, Any]) -> list[tuple[dict[str, Any], bytes]]:
        return list(await asyncio.gather(*(link.ask(head) for link in self._links)))

    async def frame(self, stream_id: str, frame_id: int) -> PeerFrame | None:
        """The newest frame with this id that a sibling holds."""
        answers = await self._ask_all({"op": "frame", "stream": stream_id, "frame_id": frame_id})
        return _newest(answers)

    async def latest(self, stream_id: str) -> PeerFrame | None:
        """The newest latest frame of this stream among the siblings."""
        return _newest(await self._ask_all({"op": "latest", "stream": stream_id}))

    async def streams(self) -> list[dict[str, Any]]:
        """Every sibling's stream summaries, one list."""
        merged: list[dict[str, Any]] = []
        for head, _ in await self._ask_all({"op": "streams"}):
            merged.extend(head.get("streams", []))
        return merged

    # --- answering siblings ------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = id(writer)
        self._accepted.add(writer)
        try:
            while True:
                head, _ = await _read(reader)
                op, query_id = head.get("op"), head.get("id")
                if op == "watch":
                    self._remote[key] = frozenset(str(s) for s in head.get("streams", []))
                    continue
                writer.write(self._answer(op, head, query_id))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._remote.pop(key, None)
            self._accepted.discard(writer)
            writer.close()

    def _answer(self, op: Any, head: dict[str, Any], query_id: Any) -> bytes:
        held: PeerFrame | None = None
        if op == "frame":
            held = self._holdings.frame(str(head.get("stream")), int(head.get("frame_id", -1)))
        elif op == "latest":
            held = self._holdings.latest(str(head.get("stream")))
        elif op == "streams":
            return _message({"id": query_id, "streams": self._holdings.streams()})
        if held is None:
            return _message({"id": query_id, "found": False})
        found = {"id": query_id, "found": True, "frame_id": held.frame_id, "ts_us": held.ts_us}
        return _message(found, held.image)


def _newest(answers: list[tuple[dict[str, Any], bytes]]) -> PeerFrame | None:
    found = [
        PeerFrame(int(head["frame_id"]), int(head["ts_us"]), body)
        for head, body in answers
        if head.get("found")
    ]
    return max(found, key=lambda f: f.ts_us, default=None)
