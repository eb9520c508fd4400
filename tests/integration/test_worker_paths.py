"""Promised worker paths, each against a real worker: stale-frame shedding, the SIGTERM
drain and commit, pausing at the in-flight limit, a delivery failure crashing it cleanly,
and an idempotent acks=all producer."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from pipeline.kafka.clients import producer_config
from pipeline.kafka.producer import CallbackProducer
from pipeline.serde import LocalSchemaIds
from pipeline.topics import engine_topics
from tests.conftest import Service, launch_worker
from tests.kafka_tools import frame, produce, read_topic
from tests.workers import committed_frames

pytestmark = pytest.mark.integration


def _wait_until(condition: Any, timeout: float, what: str, service: Service) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s:\n{service.log()}")
        time.sleep(0.1)


def _position(stack: Any, partition: int) -> int:
    return committed_frames(stack)[partition]


def test_stale_frames_are_shed_and_counted(stack: Any, start_worker: Any, dog_jpeg: bytes) -> None:
    worker = start_worker(VAE_WORKER_MAX_FRAME_AGE_MS="5000")
    topics = engine_topics(stack.settings.topics)
    frames = topics.frames.writer(LocalSchemaIds())
    values = [frames.value(frame("cam-late", i, dog_jpeg, age_s=60.0)) for i in range(3)]
    values += [frames.value(frame("cam-late", i, dog_jpeg)) for i in (3, 4)]
    produce(stack.settings.kafka, topics.frames.name, "cam-late", values)

    records = read_topic(stack.settings.kafka, topics.detections.name, lambda r: len(r) >= 2)
    decode = topics.detections.reader(LocalSchemaIds()).decode
    assert [decode(r.value)["frame_id"] for r in records] == [3, 4], worker.log()
    assert worker.metric('vae_worker_frames_skipped_total{reason="stale"}') == 3
    assert worker.metric("vae_worker_frames_processed_total") == 2
    # Shed frames are finished: the position moves past them (no re-read after a restart).
    partition = records[0].partition
    _wait_until(lambda: _position(stack, partition) == 5, 30, "commit past shed frames", worker)


def test_sigterm_drains_what_was_read_and_commits_it(
    stack: Any, start_worker: Any, dog_jpeg: bytes
) -> None:
    """SIGTERM with frames in flight: exit 0, every frame read is delivered and committed,
    so the next worker starts exactly after them: no frame lost, none repeated."""
    total = 60
    # Every frame through the model (no motion gating), so frames are in flight at SIGTERM.
    first = start_worker("worker-1", VAE_WORKER_MAX_BATCH="2", VAE_WORKER_GATE="false")
    topics = engine_topics(stack.settings.topics)
    frames = topics.frames.writer(LocalSchemaIds())
    values = [frames.value(frame("cam-term", i, dog_jpeg)) for i in range(total)]
    produce(stack.settings.kafka, topics.frames.name, "cam-term", values)
    _wait_until(
        lambda: (
            first.metric("vae_worker_frames_processed_total") >= 1
            and first.metric("vae_worker_inflight_frames") > 0
        ),
        60,
        "frames in flight",
        first,
    )
    assert first.stop(signal.SIGTERM, timeout=60) == 0, first.log()

    decode = topics.detections.reader(LocalSchemaIds()).decode
    partition = read_topic(stack.settings.kafka, topics.frames.name, lambda r: len(r) >= 1)[
        0
    ].partition
    position = _position(stack, partition)
    by_first = [
        decode(r.value)["frame_id"]
        for r in read_topic(
            stack.settings.kafka, topics.detections.name, lambda r: False, timeout=3
        )
    ]
    assert 0 < position < total, (position, first.log())
    assert by_first == list(range(position)), "what was read was delivered, then committed"

    second = start_worker("worker-2")
    records = read_topic(
        stack.settings.kafka, topics.detections.name, lambda r: len(r) >= total, timeout=120
    )
    detected = [decode(r.value)["frame_id"] for r in records]
    assert detected == list(range(total)), second.log()  # each frame once, in order


def test_worker_pauses_at_its_inflight_limit_and_resumes(own_stack: Any, dog_jpeg: bytes) -> None:
    """The broker is paused so detections wait for their acks: frames in flight climb to
    the limit, the consumer pauses there (and not above it), and resumes once acks flow."""
    # max_batch 1, depth 1: 1 x (2 x 1 + 4) + 2 unacked = 8 frames in flight at most.
    worker = launch_worker(
        own_stack,
        VAE_WORKER_MAX_BATCH="1",
        VAE_WORKER_PIPELINE_DEPTH="1",
        VAE_WORKER_MAX_UNACKED="2",
        VAE_WORKER_GATE="false",
    )
    limit, total = 8, 40
    topics = engine_topics(own_stack.settings.topics)
    frames = topics.frames.writer(LocalSchemaIds())
    values = [frames.value(frame("cam-flood", i, dog_jpeg)) for i in range(total)]
    produce(own_stack.settings.kafka, topics.frames.name, "cam-flood", values)
    processed = "vae_worker_frames_processed_total"
    _wait_until(lambda: worker.metric(processed) >= 1, 60, "a first frame", worker)
    broker_pid = own_stack.own_broker.pid
    os.kill(broker_pid, signal.SIGSTOP)
    try:
        _wait_until(
            lambda: worker.metric("vae_worker_consumer_pauses_total") >= 1, 20, "a pause", worker
        )
        assert worker.metric("vae_worker_inflight_frames") <= limit
    finally:
        os.kill(broker_pid, signal.SIGCONT)
    highest = 0.0

    def drained() -> bool:
        nonlocal highest
        highest = max(highest, worker.metric("vae_worker_inflight_frames"))
        return worker.metric(processed) >= total

    _wait_until(drained, 120, "all frames processed after resuming", worker)
    assert highest <= limit, highest


def test_producers_are_idempotent_with_acks_all(stack: Any) -> None:
    """The config every engine producer is built from gets a producer id from the broker."""
    stats: list[dict[str, Any]] = []
    conf = producer_config(stack.settings.kafka, "gateway", linger_ms=2.0, max_message_bytes=1024)
    assert conf["enable.idempotence"] is True and conf["acks"] == "all"
    conf["statistics.interval.ms"] = 200
    conf["stats_cb"] = lambda raw: stats.append(json.loads(raw))
    producer = CallbackProducer(conf)
    done: list[str | None] = []
    producer.produce(stack.settings.topics.detections, b"k", b"v", done.append)
    deadline = time.monotonic() + 20
    while not (done and stats and stats[-1]["eos"]["idemp_state"] == "Assigned"):
        assert time.monotonic() < deadline, stats[-1:] if stats else "no stats"
        time.sleep(0.1)
    producer.close(5)
    assert done == [None] and stats[-1]["eos"]["producer_id"] >= 0


def test_a_delivery_failure_crashes_the_worker_cleanly(own_stack: Any, dog_jpeg: bytes) -> None:
    """The broker stops taking detections: the worker exits 1 saying why, commits nothing
    past the undelivered frames, and a worker started afterwards detects every frame."""
    total = 30
    # Every frame through the model (no motion gating): frames are still in flight when
    # the broker stops, rather than all delivered in the first milliseconds.
    worker = launch_worker(
        own_stack, VAE_KAFKA_CLIENT_CONFIG="message.timeout.ms=2000", VAE_WORKER_GATE="false"
    )
    topics = engine_topics(own_stack.settings.topics)
    frames = topics.frames.writer(LocalSchemaIds())
    values = [frames.value(frame("cam-fail", i, dog_jpeg)) for i in range(total)]
    produce(own_stack.settings.kafka, topics.frames.name, "cam-fail", values)
    _wait_until(
        lambda: worker.metric("vae_worker_frames_processed_total") >= 1, 60, "a frame", worker
    )
    broker_pid = own_stack.own_broker.pid
    os.kill(broker_pid, signal.SIGSTOP)
    try:
        assert worker.process.wait(timeout=90) == 1, worker.log()
    finally:
        os.kill(broker_pid, signal.SIGCONT)
    assert "worker failed: detections not delivered" in worker.log(200), worker.log()

    partition = read_topic(own_stack.settings.kafka, topics.frames.name, lambda r: len(r) >= 1)[
        0
    ].partition
    assert _position(own_stack, partition) < total
    launch_worker(own_stack, "worker-2")
    decode = topics.detections.reader(LocalSchemaIds()).decode

    def every_frame(records: list[Any]) -> bool:
        return {decode(r.value)["frame_id"] for r in records} >= set(range(total))

    records = read_topic(own_stack.settings.kafka, topics.detections.name, every_frame, 120)
    assert every_frame(records)
