"""Dynamic batching policy: full batches go at once, partial ones after max_wait."""

from __future__ import annotations

import pytest

from pipeline.worker.batcher import DynamicBatcher


def test_full_batch_is_ready_immediately() -> None:
    batcher: DynamicBatcher[int] = DynamicBatcher(max_batch=3, max_wait_s=1.0)
    for i in range(3):
        batcher.add(i, now=10.0)
    assert batcher.ready(10.0)
    assert batcher.take() == [0, 1, 2]
    assert len(batcher) == 0 and not batcher.ready(99.0)


def test_partial_batch_waits_from_its_first_item() -> None:
    batcher: DynamicBatcher[str] = DynamicBatcher(max_batch=8, max_wait_s=0.010)
    batcher.add("a", now=1.000)
    batcher.add("b", now=1.008)
    assert not batcher.ready(1.009)
    assert batcher.time_left(1.004) == pytest.approx(0.006)
    assert batcher.ready(1.010)
    assert batcher.take() == ["a", "b"]
    assert batcher.time_left(2.0) is None


def test_overflow_stays_for_the_next_batch() -> None:
    batcher: DynamicBatcher[int] = DynamicBatcher(max_batch=2, max_wait_s=5)
    for i in range(5):
        batcher.add(i, now=0)
    assert batcher.take() == [0, 1]
    assert batcher.take() == [2, 3]
    assert batcher.room() == 1
    assert batcher.take() == [4]
    assert len(batcher) == 0


def test_zero_wait_sends_every_frame_alone() -> None:
    batcher: DynamicBatcher[int] = DynamicBatcher(max_batch=4, max_wait_s=0)
    batcher.add(1, now=5)
    assert batcher.ready(5)


def test_discard_removes_revoked_items() -> None:
    batcher: DynamicBatcher[tuple[int, int]] = DynamicBatcher(max_batch=4, max_wait_s=1)
    for item in [(0, 1), (1, 1), (0, 2)]:
        batcher.add(item, now=0)
    assert batcher.discard(lambda it: it[0] == 0) == [(0, 1), (0, 2)]
    assert batcher.take() == [(1, 1)]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(0, 1)
    with pytest.raises(ValueError):
        DynamicBatcher(1, -1)
