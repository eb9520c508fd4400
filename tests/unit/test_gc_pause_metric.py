"""The gateway's collector-pause histogram sees real collections, and stops when undone."""

from __future__ import annotations

import gc

from pipeline.metrics import GatewayMetrics
from pipeline.runtime import time_gc_pauses


def _count(metrics: GatewayMetrics, generation: str) -> float:
    value = metrics.registry.get_sample_value(
        "vae_gateway_gc_pause_seconds_count", {"generation": generation}
    )
    return value or 0.0


def test_full_collections_are_timed_until_undone() -> None:
    metrics = GatewayMetrics()
    undo = time_gc_pauses(metrics.gc_paused)
    try:
        gc.collect(2)
        gc.collect(2)
        assert _count(metrics, "2") >= 2
        total = metrics.registry.get_sample_value(
            "vae_gateway_gc_pause_seconds_sum", {"generation": "2"}
        )
        assert total is not None and total > 0
    finally:
        undo()
    before = _count(metrics, "2")
    gc.collect(2)
    assert _count(metrics, "2") == before


def test_tuning_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    from pipeline.runtime import tune_gc_for_many_connections

    before = gc.get_threshold()
    try:
        tune_gc_for_many_connections(0)
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
        tune_gc_for_many_connections(50_000)
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_freeze_count() > 1000  # this process's modules, out of every scan
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
