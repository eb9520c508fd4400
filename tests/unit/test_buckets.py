"""Batch buckets: powers of two up to the largest batch, and the bucket a batch pads to."""

from __future__ import annotations

import pytest

from pipeline.inference.backends.buckets import batch_buckets, bucket_for


def test_powers_of_two_up_to_max() -> None:
    assert batch_buckets(64) == (1, 2, 4, 8, 16, 32, 64)
    assert batch_buckets(1) == (1,)


def test_max_batch_that_is_not_a_power_of_two_is_its_own_bucket() -> None:
    assert batch_buckets(12) == (1, 2, 4, 8, 12)


@pytest.mark.parametrize(("rows", "bucket"), [(1, 1), (2, 2), (3, 4), (5, 8), (9, 12), (12, 12)])
def test_a_batch_pads_to_the_smallest_bucket_that_holds_it(rows: int, bucket: int) -> None:
    assert bucket_for(rows, batch_buckets(12)) == bucket


def test_bad_sizes_are_errors() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        batch_buckets(0)
    with pytest.raises(ValueError, match="largest bucket"):
        bucket_for(13, batch_buckets(12))
    with pytest.raises(ValueError, match="at least one row"):
        bucket_for(0, batch_buckets(12))
