"""The worker's gating wiring: batches split into inferred and gated frames, and each
stream's state dropped when its partition is assigned or lost. A real Worker (model,
consumer, producer, on the session's broker) whose loop is not run: the test calls its
prepare stage and its assignment callbacks as the consumer's thread would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simplejpeg

from pipeline import config
from pipeline.serde import LocalSchemaIds, frame_record
from pipeline.worker.app import FrameItem, GatedBatch, Worker
from tests.sample_clip import sample_frame


@pytest.fixture(scope="module")
def worker(broker: Any) -> Iterator[Worker]:
    settings = config.load(
        environ={
            **os.environ,  # VAE_MODEL_DIR and the like, as the services find them
            "VAE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "VAE_WORKER_METRICS_PORT": "0",
        }
    )
    made = Worker(settings, LocalSchemaIds())
    yield made
    made.producer.close(1.0)
    made.consumer.close(5.0)
    made._pool.shutdown(wait=False)


@pytest.fixture(scope="module")
def still(media: Path) -> list[bytes]:
    """A still of the sample clip, re-sent with fresh sensor noise."""
    image = sample_frame(media, 0)
    rng = np.random.default_rng(5)
    return [
        simplejpeg.encode_jpeg(
            np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8), quality=85
        )
        for _ in range(6)
    ]


def items(stream: str, partition: int, jpegs: list[bytes], first: int) -> list[FrameItem]:
    return [
        FrameItem(
            partition,
            first + i,
            frame_record(
                stream_id=stream,
                frame_id=first + i,
                capture_ts_us=(first + i) * 100_000,
                gateway_ts_us=(first + i) * 100_000,
                width=768,
                height=576,
                image=data,
            ),
            0,
        )
        for i, data in enumerate(jpegs)
    ]


def prepared(worker: Worker, frames: list[FrameItem]) -> GatedBatch:
    batch = worker._prepare(frames)
    assert batch is not None
    return batch


def test_still_frames_are_gated_and_a_moved_partition_starts_afresh(
    worker: Worker, still: list[bytes]
) -> None:
    a = items("a-1", 0, still[:3], 0)
    b = items("b-1", 1, still[:3], 0)
    batch = prepared(worker, a + b)
    assert batch.prepared.rows == [0, 3]  # each stream's first frame goes to the model
    assert sorted(batch.gated) == [1, 2, 4, 5]

    worker._on_lost([0])  # partition 0 went elsewhere: a-1's state goes with it
    batch = prepared(worker, items("a-1", 0, still[3:5], 3) + items("b-1", 1, still[3:5], 3))
    assert batch.prepared.rows == [0]
    assert sorted(batch.gated) == [1, 2, 3]

    worker._on_assign([1])  # assigned (back): b-1 starts afresh too
    batch = prepared(worker, items("b-1", 1, still[5:6], 5))
    assert batch.prepared.rows == [0] and not batch.gated
