"""Dynamic batching: a batch closes at ``max_batch`` items or ``max_wait`` after its first.

Pure (time is passed in), so the policy is unit-tested without clocks or threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DynamicBatcher(Generic[T]):
    """Collects items into batches for the model."""

    def __init__(self, max_batch: int, max_wait_s: float) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._items: list[T] = []
        self._opened_at = 0.0

    def add(self, item: T, now: float) -> None:
        if not self._items:
            self._opened_at = now
        self._items.append(item)

    def room(self) -> int:
        """Items that still fit in the open batch."""
        return self.max_batch - len(self._items)

    def ready(self, now: float) -> bool:
        """True when the open batch should go: it is full, or its first item waited enough."""
        if not self._items:
            return False
        return len(self._items) >= self.max_batch or now - self._opened_at >= self.max_wait_s

    def time_left(self, now: float) -> float | None:
        """Seconds until the open batch is due (None when there is no open batch)."""
        if not self._items:
            return None
        return max(0.0, self._opened_at + self.max_wait_s - now)

    def take(self) -> list[T]:
        """Close the open batch and return it (up to max_batch items; the rest stay)."""
        batch, self._items = self._items[: self.max_batch], self._items[self.max_batch :]
        return batch

    def discard(self, unwanted: Callable[[T], bool]) -> list[T]:
        """Remove and return the waiting items that match (their partition was revoked)."""
        removed = [item for item in self._items if unwanted(item)]
        if removed:
            self._items = [item for item in self._items if not unwanted(item)]
        return removed

    def __len__(self) -> int:
        return len(self._items)
