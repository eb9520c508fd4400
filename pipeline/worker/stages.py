"""Pipeline stages on their own threads, joined by bounded queues.

decode+letterbox (thread pool) -> infer -> postprocess+publish: while batch k runs in
the model, batch k+1 is being decoded and batch k-1 published. A full queue blocks the
stage before it, which in turn makes the consumer pause its partitions. The infer stage
is an OverlappedStage: it starts batch k+1 on the device before waiting for batch k.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

STOP = object()  # sentinel: drain and stop


class Stage(threading.Thread):
    """Applies ``work`` to each item of ``inbox``; results go to ``outbox`` (if any)."""

    def __init__(
        self,
        name: str,
        work: Callable[[Any], Any],
        inbox: queue.Queue[Any],
        outbox: queue.Queue[Any] | None,
        on_crash: Callable[[str], None],
    ) -> None:
        super().__init__(name=f"stage-{name}", daemon=True)
        self.work = work
        self.inbox = inbox
        self.outbox = outbox
        self.on_crash = on_crash

    def run(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # a bug: stop the worker rather than stall silently
            log.exception("stage %s failed", self.name)
            self.on_crash(f"{self.name}: {exc!r}")

    def _serve(self) -> None:
        while True:
            item = self.inbox.get()
            if item is STOP:
                self._put(STOP)
                return
            self._put(self.work(item))

    def _put(self, result: Any) -> None:
        if self.outbox is not None and result is not None:
            self.outbox.put(result)


class OverlappedStage(Stage):
    """A stage whose work is split into ``start`` (returns at once) and ``finish`` (waits).

    Up to ``depth`` items are started before the oldest is finished, so on a GPU the copy
    of batch k+1 overlaps the inference of batch k. When the inbox is empty the oldest
    started item is finished at once, so a lone batch never waits for company. Results
    leave in arrival order, which keeps each stream's frames in order.
    """

    def __init__(
        self,
        name: str,
        start: Callable[[Any], Any],
        finish: Callable[[Any], Any],
        inbox: queue.Queue[Any],
        outbox: queue.Queue[Any],
        on_crash: Callable[[str], None],
        depth: int = 2,
    ) -> None:
        super().__init__(name, start, inbox, outbox, on_crash)
        self.finish = finish
        self.depth = max(1, depth)

    def _next(self, pending: int) -> Any:
        """The next item, or None when something is started and nothing more is waiting."""
        if not pending:
            return self.inbox.get()
        try:
            return self.inbox.get_nowait()
        except queue.Empty:
            return None

    def _serve(self) -> None:
        pending: deque[Any] = deque()
        while True:
            item = self._next(len(pending))
            if item is None:
                self._put(self.finish(pending.popleft()))
                continue
            if item is STOP:
                while pending:
                    self._put(self.finish(pending.popleft()))
                self._put(STOP)
                return
            pending.append(self.work(item))
            if len(pending) >= self.depth:
                self._put(self.finish(pending.popleft()))
