"""Pipeline stages on their own threads, joined by bounded queues.

decode+letterbox (thread pool) -> infer -> postprocess+publish: while batch k runs in
the model, batch k+1 is being decoded and batch k-1 published. A full queue blocks the
stage before it, which in turn makes the consumer pause its partitions.
"""

from __future__ import annotations

import logging
import queue
import threading
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
        while True:
            item = self.inbox.get()
            if item is STOP:
                if self.outbox is not None:
                    self.outbox.put(STOP)
                return
            try:
                result = self.work(item)
            except Exception as exc:  # a bug: stop the worker rather than stall silently
                log.exception("stage %s failed", self.name)
                self.on_crash(f"{self.name}: {exc!r}")
                return
            if self.outbox is not None and result is not None:
                self.outbox.put(result)
