"""The pipeline level: a real `vae worker` process between two topics of a real broker.

The frames topic is filled first (Avro records of real JPEGs, keyed by 16 stream ids over
its partitions, as the gateway writes them), then a worker is started with the backend,
precision and batch size under test, and the detections topic is followed until every
frame has come back. Throughput is measured over the detections' publish times once the
worker is running (the consumer-group join and the first batches are left out); latency
is per frame, from the worker polling it to the worker publishing its detections.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pipeline import config
from pipeline.children import spawn_vae, stop
from pipeline.config import KafkaSettings, ModelSettings, TopicSettings
from pipeline.kafka import producer_config
from pipeline.kafka.admin import ensure_topics
from pipeline.kafka.producer import CallbackProducer
from pipeline.kafka.tail import TopicTail
from pipeline.runtime import free_port, pid_cpu_seconds
from pipeline.serde import DetectionsRecord, FrameRecord, LocalSchemaIds, frame_record
from pipeline.shell.bench.results import Point, percentile, steady_rate
from pipeline.topics import Topic, engine_topics

STREAMS = 16
WARMUP_BATCHES = 2
# The embedded broker completes a group join only after the rebalance timeout.
GROUP_TIMEOUT_MS = 6000


class PipelineRunFailed(RuntimeError):
    """The worker exited, or did not return every frame in time."""


def _fill_frames_topic(
    kafka: KafkaSettings,
    topic: Topic[FrameRecord],
    jpegs: Sequence[tuple[bytes, int, int]],
    count: int,
) -> None:
    frames = topic.writer(LocalSchemaIds())
    producer = CallbackProducer(
        producer_config(kafka, "bench", linger_ms=5.0, max_message_bytes=4_194_304)
    )
    errors: list[str] = []
    now_us = time.time_ns() // 1000
    for index in range(count):
        jpeg, width, height = jpegs[index % len(jpegs)]
        record = frame_record(
            stream_id=f"bench-{index % STREAMS}",
            frame_id=index // STREAMS,
            capture_ts_us=now_us,
            gateway_ts_us=now_us,
            width=width,
            height=height,
            image=jpeg,
        )
        producer.produce(
            frames.topic,
            frames.key(record),
            frames.value(record),
            lambda error: errors.append(error) if error else None,
        )
    undelivered = producer.close(60.0)
    if undelivered or errors:
        raise PipelineRunFailed(
            f"could not load the frames topic: {undelivered} left, {errors[:1]}"
        )


def run_pipeline_level(
    *,
    bootstrap: str,
    broker_pid: int | None,
    backend: str,
    device: str,
    precision: str,
    batch: int,
    frames: int,
    jpegs: Sequence[tuple[bytes, int, int]],
    model: ModelSettings,
    log_dir: Path,
    timeout_s: float,
) -> Point:
    """Run one worker over ``frames`` pre-loaded frames; return throughput and latency."""
    suffix = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap=bootstrap)
    topics = replace(
        TopicSettings(), frames=f"bench-frames-{suffix}", detections=f"bench-dets-{suffix}"
    )
    declared = engine_topics(topics)
    ensure_topics(kafka, declared.all())
    _fill_frames_topic(kafka, declared.frames, jpegs, frames)

    decoder = declared.detections.reader(LocalSchemaIds())
    received: list[DetectionsRecord] = []
    enough = threading.Event()
    # (frames received, worker CPU s, broker CPU s) at the first detection: the CPU spent
    # from there on is steady-state work, without the model load and the group join.
    first: list[tuple[int, float, float]] = []

    def deliver(batch_records: list[DetectionsRecord]) -> None:
        received.extend(batch_records)
        if not first:
            first.append((len(received), pid_cpu_seconds(worker.pid), pid_cpu_seconds(broker_pid)))
        if len(received) >= frames:
            enough.set()

    tail: TopicTail[DetectionsRecord] = TopicTail(
        kafka, topics.detections, lambda _key, value: decoder.decode(value), deliver
    )
    tail.start()
    if not tail.ready.wait(30):
        raise PipelineRunFailed("could not follow the detections topic")
    # The worker's settings: this process's environment, with what the run under test sets.
    base = config.load()
    settings = replace(
        base,
        kafka=replace(base.kafka, bootstrap=bootstrap),
        topics=replace(
            base.topics, frames=topics.frames, detections=topics.detections, create=False
        ),
        worker=replace(
            base.worker,
            group_id=f"bench-{suffix}",
            max_batch=batch,
            metrics_port=free_port(),
            max_poll_interval_ms=GROUP_TIMEOUT_MS,
            session_timeout_ms=GROUP_TIMEOUT_MS,
        ),
        # The bench's model settings (flags and environment), on the backend and precision
        # of this point.
        model=replace(model, backend=backend, precision=precision),
    )
    env = {**os.environ, **config.to_env(settings), "PYTHONUNBUFFERED": "1"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU twin of a GPU backend stays on the CPU
    name = f"worker-{backend}-{device}-{precision}-b{batch}"
    worker = spawn_vae(name, ["worker"], env=env, log_dir=log_dir)
    log_path = worker.log_path
    try:
        deadline = time.monotonic() + timeout_s
        while not enough.wait(0.5):
            if not worker.running():
                raise PipelineRunFailed(f"worker exited ({worker.returncode}); see {log_path}")
            if time.monotonic() > deadline:
                raise PipelineRunFailed(
                    f"{len(received)}/{frames} detections after {timeout_s:.0f} s; see {log_path}"
                )
        worker_cpu, broker_cpu = pid_cpu_seconds(worker.pid), pid_cpu_seconds(broker_pid)
    finally:
        stop([worker], grace_s=30.0)  # it drains and commits what it read
        tail.stop()
    done_s = [r["worker_ts_us"] / 1e6 for r in received]
    latencies = [
        (r["worker_ts_us"] - r["gateway_ts_us"]) / 1e3 - r["timings"]["queue_ms"] for r in received
    ]
    label = received[0]["model"].split("/")[1] if received else backend
    counted = max(1, len(received) - first[0][0])
    return Point(
        backend=label,
        precision=precision,
        level="pipeline",
        batch=batch,
        images_per_s=steady_rate(done_s, skip=WARMUP_BATCHES * batch),
        latency_ms_p50=percentile(latencies, 50),
        latency_ms_p90=percentile(latencies, 90),
        frames=len(received),
        cpu_ms_per_frame=(worker_cpu - first[0][1]) * 1e3 / counted,
        broker_cpu_ms_per_frame=(broker_cpu - first[0][2]) * 1e3 / counted,
    )
