"""The overlapped infer stage: starts the next batch before finishing the current one."""

from __future__ import annotations

import queue
import threading
from typing import Any

from pipeline.worker.stages import STOP, OverlappedStage


class Device:
    """Records how many items were started and not yet finished."""

    def __init__(self) -> None:
        self.outstanding = 0
        self.most_outstanding = 0
        self.lock = threading.Lock()

    def start(self, item: int) -> int:
        with self.lock:
            self.outstanding += 1
            self.most_outstanding = max(self.most_outstanding, self.outstanding)
        return item

    def finish(self, item: int) -> int:
        with self.lock:
            self.outstanding -= 1
        return item * 10


def run_stage(items: list[Any], depth: int = 2) -> tuple[list[Any], Device]:
    device = Device()
    inbox: queue.Queue[Any] = queue.Queue()
    outbox: queue.Queue[Any] = queue.Queue()
    for item in items:
        inbox.put(item)
    crashes: list[str] = []
    stage = OverlappedStage(
        "infer", device.start, device.finish, inbox, outbox, crashes.append, depth
    )
    stage.start()
    stage.join(timeout=10)
    assert not stage.is_alive() and not crashes
    return [outbox.get_nowait() for _ in range(outbox.qsize())], device


def test_results_leave_in_order_and_stop_follows_them() -> None:
    results, device = run_stage([1, 2, 3, 4, 5, STOP])
    assert results == [10, 20, 30, 40, 50, STOP]
    assert device.outstanding == 0


def test_two_batches_in_flight_at_most() -> None:
    _, device = run_stage([*range(20), STOP], depth=2)
    assert device.most_outstanding == 2


def test_a_lone_batch_is_finished_without_waiting_for_the_next() -> None:
    inbox: queue.Queue[Any] = queue.Queue()
    outbox: queue.Queue[Any] = queue.Queue()
    device = Device()
    stage = OverlappedStage("infer", device.start, device.finish, inbox, outbox, print)
    stage.start()
    inbox.put(7)
    assert outbox.get(timeout=5) == 70  # nothing else arrives, yet the batch comes out
    inbox.put(STOP)
    assert outbox.get(timeout=5) is STOP


def test_a_failure_is_reported() -> None:
    inbox: queue.Queue[Any] = queue.Queue()
    outbox: queue.Queue[Any] = queue.Queue()
    crashes: list[str] = []

    def broken(item: Any) -> Any:
        raise RuntimeError("device lost")

    stage = OverlappedStage("infer", lambda item: item, broken, inbox, outbox, crashes.append)
    stage.start()
    inbox.put(1)
    stage.join(timeout=5)
    assert crashes and "device lost" in crashes[0]


def test_depth_one_finishes_each_batch_before_the_next() -> None:
    """A backend that completes inside submit gains nothing from overlap, only latency."""
    results, device = run_stage([1, 2, 3, STOP], depth=1)
    assert results == [10, 20, 30, STOP] and device.most_outstanding == 1
