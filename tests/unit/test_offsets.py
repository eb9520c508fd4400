"""Commit positions never pass a frame still in flight, whatever order frames finish in."""

from __future__ import annotations

import random
import threading

from pipeline.worker.offsets import OffsetTracker


def test_in_order_completion_advances_one_by_one() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.track(0, offset)
    tracker.finish(0, 10)
    assert tracker.take_committable() == {0: 11}
    assert tracker.take_committable() == {}  # only changes are reported
    tracker.finish(0, 11)
    tracker.finish(0, 12)
    assert tracker.take_committable() == {0: 13}
    assert tracker.inflight() == 0


def test_out_of_order_completion_waits_for_the_gap() -> None:
    tracker = OffsetTracker()
    for offset in range(5):
        tracker.track(3, offset)
    for offset in (4, 2, 1):
        tracker.finish(3, offset)
    assert tracker.take_committable() == {}  # 0 is still in flight
    tracker.finish(3, 0)
    assert tracker.take_committable() == {3: 3}  # 3 still in flight
    tracker.finish(3, 3)
    assert tracker.take_committable() == {3: 5}


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.track(0, 100)
    tracker.track(1, 7)
    tracker.finish(1, 7)
    assert tracker.take_committable() == {1: 8}
    assert tracker.inflight() == 1 and tracker.inflight([1]) == 0


def test_revoked_partitions_are_forgotten() -> None:
    tracker = OffsetTracker()
    tracker.track(0, 1)
    tracker.forget([0])
    tracker.finish(0, 1)  # a late delivery for a partition we no longer own
    assert tracker.take_committable() == {}


def test_untracked_frames_do_not_hold_the_position() -> None:
    tracker = OffsetTracker()
    for offset in (1, 2, 3):
        tracker.track(0, offset)
    tracker.untrack(0, 3)  # waiting in the batch when its partition was revoked
    tracker.finish(0, 1)
    tracker.finish(0, 2)
    assert tracker.take_committable() == {0: 3}  # 3 is read again by the next owner
    assert tracker.wait_drained([0], timeout=0.01)


def test_wait_drained_blocks_until_deliveries_finish() -> None:
    tracker = OffsetTracker()
    tracker.track(0, 1)
    assert not tracker.wait_drained([0], timeout=0.01)
    threading.Timer(0.05, tracker.finish, args=(0, 1)).start()
    assert tracker.wait_drained([0], timeout=5)


def test_random_completion_order_never_commits_past_an_unfinished_frame() -> None:
    rng = random.Random(11)
    tracker = OffsetTracker()
    offsets = list(range(1000))
    for offset in offsets:
        tracker.track(0, offset)
    rng.shuffle(offsets)
    finished: set[int] = set()
    for offset in offsets:
        tracker.finish(0, offset)
        finished.add(offset)
        moved = tracker.take_committable()
        if 0 in moved:
            assert all(o in finished for o in range(moved[0]))
            assert moved[0] not in finished or moved[0] == 1000
    assert tracker.inflight() == 0


def test_a_handover_takes_every_position_of_its_partitions_and_keeps_the_others() -> None:
    """A handover commits the revoked partitions' positions, those already taken for the
    auto-commit included; the kept ones' moves stay to be taken."""
    tracker = OffsetTracker()
    for partition in (0, 1, 2):
        tracker.track(partition, 5)
        tracker.finish(partition, 5)
    tracker.track(3, 9)
    tracker.finish(3, 9)
    assert tracker.take_committable() == {0: 6, 1: 6, 2: 6, 3: 10}
    for partition in (0, 1, 2):
        tracker.track(partition, 6)
        tracker.finish(partition, 6)
    # Partitions 1 and 3 revoked: 3's position was stored already, it is committed all the same.
    assert tracker.positions([1, 3, 4]) == {1: 7, 3: 10}
    assert tracker.take_committable() == {0: 7, 2: 7}  # still to store for the kept ones


def test_a_late_delivery_from_before_a_loss_moves_nothing() -> None:
    """Frames read before a partition was lost finish after it came back: ignored."""
    tracker = OffsetTracker()
    tracker.track(0, 10)
    tracker.forget([0])  # lost
    tracker.track(0, 4)  # assigned again: read again from the committed position
    tracker.finish(0, 10)  # the late delivery of the earlier reading
    tracker.finish(0, 4)
    assert tracker.take_committable() == {0: 5}
    tracker.track(0, 10)
    tracker.track(0, 11)
    tracker.finish(0, 11)
    assert tracker.take_committable() == {}  # offset 10 of the new reading is in flight
    tracker.finish(0, 10)
    assert tracker.take_committable() == {0: 12}
