"""The last few frames of each stream a viewer watches, so boxes meet the frame they belong to.

Detections reach a viewer one pipeline latency after their frame: by then the stream's
latest frame is a newer one, and boxes drawn on it would be off. Keeping the recent frames
of *watched* streams (those a subscriber named explicitly) lets the viewer fetch the exact
frame by id (`GET /v1/streams/{id}/frames/{frame_id}.jpg`). Memory is bounded twice: a
number of frames per stream, and a byte budget over all streams (the oldest frame of any
stream goes first). Frames are kept by reference, never copied. Runs on the event loop only.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeldFrame:
    """One kept frame: its id, its gateway receive time (the X-Frame-Ts-Us header), the JPEG."""

    frame_id: int
    ts_us: int
    image: bytes
    seq: int


def _everything(_stream_id: str) -> bool:
    return True


class FrameHistory:
    """Recent frames per watched stream: at most ``depth`` each, ``max_bytes`` in all."""

    def __init__(
        self, depth: int, max_bytes: int, watched: Callable[[str], bool] = _everything
    ) -> None:
        self.depth = depth
        self.max_bytes = max_bytes
        self.watched = watched  # replaced when sibling processes watch streams too
        self._streams: dict[str, deque[HeldFrame]] = {}
        # Every held frame by insertion sequence: the oldest of all is evicted first.
        self._order: OrderedDict[int, str] = OrderedDict()
        self._seq = 0
        self.bytes = 0

    @property
    def enabled(self) -> bool:
        return self.depth > 0 and self.max_bytes > 0

    def add(self, stream_id: str, frame_id: int, ts_us: int, image: bytes) -> None:
        """Keep a frame if someone watches its stream; forget a stream nobody watches now."""
        if not self.enabled:
            return
        if not self.watched(stream_id):
            if stream_id in self._streams:
                self.drop(stream_id)
            return
        if len(image) > self.max_bytes:
            return  # could never fit; keeping it would evict everything else
        ring = self._streams.setdefault(stream_id, deque())
        if len(ring) == self.depth:
            self._forget(ring.popleft())
        self._seq += 1
        held = HeldFrame(frame_id, ts_us, image, self._seq)
        ring.append(held)
        self._order[held.seq] = stream_id
        self.bytes += len(image)
        while self.bytes > self.max_bytes:
            self._evict_oldest()

    def get(self, stream_id: str, frame_id: int) -> HeldFrame | None:
        """The newest kept frame with that id (ids restart when a browser camera reconnects)."""
        for held in reversed(self._streams.get(stream_id, ())):
            if held.frame_id == frame_id:
                return held
        return None

    def drop(self, stream_id: str) -> None:
        for held in self._streams.pop(stream_id, ()):
            self._forget(held)

    def _forget(self, held: HeldFrame) -> None:
        del self._order[held.seq]
        self.bytes -= len(held.image)

    def _evict_oldest(self) -> None:
        _, stream_id = self._order.popitem(last=False)
        ring = self._streams[stream_id]
        held = ring.popleft()  # a stream's frames are in insertion order: this is the one
        self.bytes -= len(held.image)
        if not ring:
            del self._streams[stream_id]

    def __len__(self) -> int:
        return len(self._order)

    def streams(self) -> int:
        return len(self._streams)
