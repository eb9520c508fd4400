"""Engine batch buckets: the few batch sizes a static-shape engine is built or captured for.

A CUDA graph (and any engine with fixed shapes) runs one batch size; capturing every size
from 1 to 64 would cost 64 captures and their memory. Powers of two up to the largest
batch (plus the largest itself) waste at most half a batch of padding and need at most
seven captures for 64. Pure: unit-tested without a device.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence


def batch_buckets(max_batch: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to ``max_batch``; ``max_batch`` itself is always the last bucket."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, not {max_batch}")
    sizes = []
    size = 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    sizes.append(max_batch)
    return tuple(sizes)


def bucket_for(rows: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds ``rows`` (a batch larger than every bucket is an error)."""
    if rows < 1:
        raise ValueError(f"a batch has at least one row, not {rows}")
    index = bisect_left(buckets, rows)
    if index == len(buckets):
        raise ValueError(f"batch of {rows} exceeds the largest bucket {buckets[-1]}")
    return buckets[index]
