"""Detections fan-out to subscribers, each behind its own bounded queue.

A subscriber's queue drops its *oldest* message when full (a live feed wants the newest
boxes), counts what it dropped, and tells the subscriber so. A slow subscriber therefore
only ever costs itself: publishing never waits on a socket.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Subscriber:
    """One subscribe socket's interest (None = every stream) and its bounded queue.

    ``visible``, for an every-stream subscriber, keeps out the streams its token may not
    see (None: it may see them all).
    """

    def __init__(
        self,
        streams: frozenset[str] | None,
        maxlen: int,
        visible: Callable[[str], bool] | None = None,
    ) -> None:
        if maxlen < 1:
            raise ValueError("a subscriber queue holds at least one message")
        self.streams = streams
        self.visible = visible
        self._queue: deque[str] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self.dropped = 0
        self._dropped_unreported = 0

    def offer(self, message: str) -> bool:
        """Queue a message; False when that pushed the oldest one out."""
        full = len(self._queue) == self._queue.maxlen
        self._queue.append(message)
        self._ready.set()
        if full:
            self.dropped += 1
            self._dropped_unreported += 1
        return not full

    def take_dropped(self) -> int:
        """Drops not yet reported to the subscriber (and forget them)."""
        count, self._dropped_unreported = self._dropped_unreported, 0
        return count

    async def next(self) -> str:
        """The oldest queued message, waiting for one if needed."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def __len__(self) -> int:
        return len(self._queue)


class FanoutHub:
    """Who wants which stream; publishing is O(interested subscribers)."""

    def __init__(self) -> None:
        self._by_stream: dict[str, set[Subscriber]] = {}
        self._everything: set[Subscriber] = set()
        # Called when the set of named streams changes (the gateway's siblings hear of it).
        self.on_watch_change: Callable[[], None] | None = None

    def add(self, subscriber: Subscriber) -> None:
        if subscriber.streams is None:
            self._everything.add(subscriber)
            return
        new = False
        for stream in subscriber.streams:
            members = self._by_stream.get(stream)
            if members is None:
                members = self._by_stream[stream] = set()
                new = True
            members.add(subscriber)
        if new and self.on_watch_change is not None:
            self.on_watch_change()

    def remove(self, subscriber: Subscriber) -> None:
        self._everything.discard(subscriber)
        gone = False
        for stream in subscriber.streams or ():
            members = self._by_stream.get(stream)
            if members is not None:
                members.discard(subscriber)
                if not members:
                    del self._by_stream[stream]
                    gone = True
        if gone and self.on_watch_change is not None:
            self.on_watch_change()

    def publish(self, stream_id: str, message: str) -> tuple[int, int]:
        """Offer a message to everyone interested; return (delivered to, dropped by)."""
        delivered = dropped = 0
        for group in (self._by_stream.get(stream_id, ()), self._everything):
            for subscriber in group:
                if subscriber.visible is not None and not subscriber.visible(stream_id):
                    continue
                delivered += 1
                if not subscriber.offer(message):
                    dropped += 1
        return delivered, dropped

    def watches(self, stream_id: str) -> bool:
        """Whether a subscriber named this stream (a `*` subscriber watches none in particular)."""
        return stream_id in self._by_stream

    def watched(self) -> list[str]:
        """Every stream a subscriber named."""
        return sorted(self._by_stream)

    def __len__(self) -> int:
        unique = set(self._everything)
        for members in self._by_stream.values():
            unique |= members
        return len(unique)
