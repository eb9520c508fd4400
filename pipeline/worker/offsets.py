"""Which offsets may be committed: only those below every frame still in flight.

Frames of a partition finish out of order (a batch mixes partitions; detections of
different streams are acknowledged by different result partitions), so a partition's
committable position is the lowest offset not yet finished. Committing only that means
a worker killed at any moment loses no frame: everything after it is read again.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable


class _Partition:
    __slots__ = ("done", "next_to_commit", "pending", "tracked")

    def __init__(self) -> None:
        self.pending: list[int] = []  # min-heap of offsets tracked and not yet done
        self.tracked: set[int] = set()  # the same offsets, to look one up
        self.done: set[int] = set()  # finished offsets still above a pending one
        self.next_to_commit: int | None = None


class OffsetTracker:
    """Thread-safe: the consumer thread tracks, the producer's delivery thread finishes."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._lock = threading.Condition()
        self._changed: set[int] = set()

    def track(self, partition: int, offset: int) -> None:
        """A frame was read and is now in flight."""
        with self._lock:
            state = self._partitions.setdefault(partition, _Partition())
            if offset not in state.tracked:
                state.tracked.add(offset)
                heapq.heappush(state.pending, offset)

    def finish(self, partition: int, offset: int) -> None:
        """A frame's detections were delivered (or it was skipped on purpose).

        An offset not tracked is ignored: a late delivery of a frame read before its
        partition was lost and assigned again (the partition's new reading tracks afresh).
        """
        with self._lock:
            state = self._partitions.get(partition)
            if state is None or offset not in state.tracked:
                return  # partition revoked meanwhile: its new owner reads it again
            state.done.add(offset)
            advanced = None
            while state.pending and state.pending[0] in state.done:
                finished = heapq.heappop(state.pending)
                state.done.discard(finished)
                state.tracked.discard(finished)
                advanced = finished + 1
            if advanced is not None:
                state.next_to_commit = advanced
                self._changed.add(partition)
            self._lock.notify_all()

    def untrack(self, partition: int, offset: int) -> None:
        """A frame read but never started: forget it without moving the commit position."""
        with self._lock:
            state = self._partitions.get(partition)
            if state is not None and offset in state.tracked and offset not in state.done:
                state.tracked.discard(offset)
                state.pending.remove(offset)
                heapq.heapify(state.pending)
                self._lock.notify_all()

    def take_committable(self) -> dict[int, int]:
        """Partitions whose commit position moved since the last call -> next offset to read."""
        with self._lock:
            moved = {}
            for partition in self._changed:
                state = self._partitions.get(partition)
                if state is not None and state.next_to_commit is not None:
                    moved[partition] = state.next_to_commit
            self._changed.clear()
            return moved

    def positions(self, partitions: Iterable[int]) -> dict[int, int]:
        """The commit position of each of ``partitions`` that has one, moved since the last
        ``take_committable`` or not (a handover commits them all, synchronously: a position
        stored for the auto-commit and not yet committed would otherwise race the next
        owner's first fetch); the other partitions' moves stay to be taken."""
        with self._lock:
            found = {}
            for partition in partitions:
                state = self._partitions.get(partition)
                if state is not None and state.next_to_commit is not None:
                    found[partition] = state.next_to_commit
                self._changed.discard(partition)
            return found

    def inflight(self, partitions: Iterable[int] | None = None) -> int:
        """Frames tracked and not finished (in the given partitions, or in all)."""
        with self._lock:
            chosen = self._partitions if partitions is None else partitions
            return sum(len(self._partitions[p].pending) for p in chosen if p in self._partitions)

    def wait_drained(self, partitions: Iterable[int], timeout: float) -> bool:
        """Block until the partitions have nothing in flight (True) or the timeout (False)."""
        wanted = list(partitions)
        with self._lock:
            return self._lock.wait_for(
                lambda: all(
                    not self._partitions[p].pending for p in wanted if p in self._partitions
                ),
                timeout,
            )

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions were revoked or lost: stop tracking them."""
        with self._lock:
            for partition in partitions:
                self._partitions.pop(partition, None)
                self._changed.discard(partition)
            self._lock.notify_all()
