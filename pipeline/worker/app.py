"""The worker process: a consumer-group member running batched detection.

Threads: the main thread polls Kafka, batches frames and stores offsets; three stage
threads decode, infer and publish; librdkafka's threads do the I/O. Offsets are stored
only after a frame's detections are acknowledged by the broker, so a worker killed at
any moment loses nothing: its uncommitted frames are read again by whoever takes over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.config import Settings
from pipeline.inference.backends import create_backend
from pipeline.inference.detections import Detections
from pipeline.inference.detector import Detector, PreparedBatch, Submitted, choose_preparer
from pipeline.inference.labels import COCO_CLASSES
from pipeline.kafka import consumer_config, producer_config
from pipeline.kafka.group import GroupConsumer, RawMessage
from pipeline.kafka.producer import CallbackProducer
from pipeline.kafka.registry import schema_ids_from
from pipeline.metrics import WorkerMetrics
from pipeline.runtime import idle_priority, set_idle_priority
from pipeline.serde import (
    DetectedObjectRecord,
    FrameRecord,
    SchemaIds,
    SchemaUnavailable,
    SerdeError,
    dead_letter_record,
    detected_objects,
    detections_record,
    stage_timings,
)
from pipeline.topics import DEAD_LETTER_OVERHEAD, engine_topics
from pipeline.worker.batcher import DynamicBatcher
from pipeline.worker.gating import (
    Grey,
    LastInferred,
    MotionGate,
    MotionParams,
    stream_group,
    thumbnail,
)
from pipeline.worker.health import serve_health
from pipeline.worker.offsets import OffsetTracker
from pipeline.worker.stages import STOP, OverlappedStage, Stage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FrameItem:
    """A frame on its way through the worker, with where it came from."""

    partition: int
    offset: int
    record: FrameRecord
    polled_us: int


@dataclass(slots=True)
class SchemaWait:
    """A partition held at a record whose schema id could not be resolved yet."""

    offset: int
    since: float  # monotonic time the record was first met
    retry_at: float = 0.0
    attempts: int = 0


@dataclass(slots=True)
class GatedBatch:
    """A batch after gating: ``prepared.rows`` index ``frames``; ``gated`` maps the frames
    that skip the model to their thumbnail's decode time (ms)."""

    frames: list[FrameItem]
    prepared: PreparedBatch
    gated: dict[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class InferredBatch:
    batch: GatedBatch
    raw: Any
    inference_ms: float


def _no_rows() -> PreparedBatch:
    return PreparedBatch(
        tensor=None,
        ratios=np.zeros((0,), np.float32),
        sizes=np.zeros((0, 2), np.int32),
        rows=[],
        decode_ms=[],
        preprocess_ms=[],
    )


def _now_us() -> int:
    return time.time_ns() // 1000


class Worker:
    """Everything one worker process runs; ``run`` returns when stopped or failed."""

    def __init__(self, settings: Settings, ids: SchemaIds | None = None) -> None:
        self.settings = settings
        w = settings.worker
        self.metrics = WorkerMetrics()
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        ids = ids or schema_ids_from(
            settings.schema_registry.url, settings.schema_registry.basic_auth
        )
        topics = engine_topics(settings.topics)
        self._frames = topics.frames
        self._decoder = topics.frames.reader(ids)
        self._frames_writer = topics.frames.writer(ids)  # re-encodes a frame for a dead letter
        self._detections = topics.detections.writer(ids)
        self._dead_letters = topics.dead_letters.writer(ids)
        self._schema_waits: dict[int, SchemaWait] = {}
        backend = create_backend(settings.model, w.max_batch)
        self._pool = ThreadPoolExecutor(max(1, w.decode_threads), thread_name_prefix="decode")
        self.detector = Detector(
            backend,
            conf_threshold=settings.model.conf_threshold,
            iou_threshold=settings.model.nms_iou,
            preparer=choose_preparer(
                backend,
                self._pool,
                settings.model.gpu_preprocess,
                settings.model.cpu_resize,
                settings.model.decode_margin,
            ),
        )
        self.gate = MotionGate(MotionParams.of(w), enabled=w.gate)
        self._last_objects: LastInferred[list[DetectedObjectRecord]] = LastInferred()
        self.model_label = f"{settings.model.name}/{self.detector.model_label}"
        self.metrics.backend.labels(backend.name, backend.precision).set(1)
        self.tracker = OffsetTracker()
        self.batcher: DynamicBatcher[FrameItem] = DynamicBatcher(
            w.max_batch, w.max_wait_ms / 1000.0
        )
        # Batches: one being formed, `depth` queued before each stage, one in prepare, two
        # in infer (overlapped), one in publish; then the frames awaiting the broker's ack
        # (measured: a window of 8 at batch 1 held the worker to half its speed).
        self._max_inflight = w.max_batch * (2 * w.pipeline_depth + 4) + w.max_unacked
        self._owned: set[int] = set()
        self._stop = threading.Event()
        self._failure: str | None = None
        self._heartbeat = time.monotonic()
        self.producer = CallbackProducer(
            producer_config(
                settings.kafka,
                "worker",
                linger_ms=1.0,
                # detections are small; a dead letter carries a whole frame record
                max_message_bytes=settings.topics.max_message_bytes + DEAD_LETTER_OVERHEAD,
            )
        )
        self.consumer = GroupConsumer(
            consumer_config(
                settings.kafka,
                "worker",
                group_id=w.group_id,
                max_poll_interval_ms=w.max_poll_interval_ms,
                session_timeout_ms=w.session_timeout_ms,
                fetch_max_bytes=w.fetch_max_bytes,
                queue_kbytes=w.fetch_queue_kbytes,
            ),
            self._frames.name,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
            on_stats=self._on_stats,
        )
        depth = max(1, w.pipeline_depth)
        self._prepare_q: queue.Queue[Any] = queue.Queue(depth)
        self._infer_q: queue.Queue[Any] = queue.Queue(depth)
        self._publish_q: queue.Queue[Any] = queue.Queue(depth)
        self._stages = [
            Stage("prepare", self._prepare, self._prepare_q, self._infer_q, self._crash),
            OverlappedStage(
                "infer",
                self._submit,
                self._collect,
                self._infer_q,
                self._publish_q,
                self._crash,
                depth=backend.max_in_flight,
            ),
            Stage("publish", self._publish, self._publish_q, None, self._crash),
        ]

    # --- consumer thread -------------------------------------------------------------

    def _on_assign(self, partitions: list[int]) -> None:
        # A partition that comes back may have been elsewhere meanwhile: start afresh.
        self._forget_streams(partitions)
        self._owned.update(partitions)
        self.metrics.assigned_partitions.set(len(self._owned))

    def _on_revoke(self, partitions: list[int]) -> None:
        """Before giving partitions up: finish their frames in flight and commit them.

        Frames still waiting in the open batch are dropped (the next owner reads them
        again from the committed position); frames already in the stages get up to 5 s
        to be delivered so that the next owner does not repeat them.
        """
        revoked = set(partitions)
        for item in self.batcher.discard(lambda f: f.partition in revoked):
            self.tracker.untrack(item.partition, item.offset)
        deadline = time.monotonic() + 5.0
        drained = False
        while not drained and self._failure is None and time.monotonic() < deadline:
            drained = self.tracker.wait_drained(revoked, timeout=0.1)
        if self._failure is not None:
            # Failing (a delivery failed: the broker may be out of reach, and a synchronous
            # commit would then hang the exit): nothing more is committed; the next owner
            # reads these partitions again from their last committed positions.
            self._release(partitions)
            return
        if not drained:
            log.warning("revoked partitions %s still had frames in flight after 5 s", partitions)
        # Every revoked partition's position, those already stored for the auto-commit
        # included (librdkafka would commit those after this callback, racing the next
        # owner's first fetch); the kept partitions' moves stay pending for the next store.
        self.consumer.commit(self.tracker.positions(revoked))
        self._release(partitions)

    def _on_lost(self, partitions: list[int]) -> None:
        """The group moved these partitions on without us (our session expired: the process
        was stopped, or stalled): nothing of them may be committed any more. Frames waiting
        in the open batch are dropped (their new owner reads them); those already in the
        stages are still published, and repeat (at least once)."""
        lost = set(partitions)
        self.batcher.discard(lambda f: f.partition in lost)
        self._release(partitions)

    def _forget_streams(self, partitions: list[int]) -> None:
        self.gate.forget(partitions)
        self._last_objects.forget(partitions)

    def _release(self, partitions: list[int]) -> None:
        self._forget_streams(partitions)
        self.tracker.forget(partitions)
        for partition in partitions:
            self._owned.discard(partition)
            self._schema_waits.pop(partition, None)
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(str(partition))
        self.metrics.assigned_partitions.set(len(self._owned))

    def _on_stats(self, stats: dict[str, Any]) -> None:
        topic = stats.get("topics", {}).get(self._frames.name, {})
        for key, partition in topic.get("partitions", {}).items():
            if key.isdigit() and int(key) in self._owned and partition.get("consumer_lag", -1) >= 0:
                self.metrics.consumer_lag.labels(key).set(partition["consumer_lag"])

    def _accept(self, message: RawMessage, now: float) -> None:
        if message.partition in self.consumer.held:
            return  # fetched before the hold: read again from the held offset once released
        self.metrics.frames_consumed.inc()
        try:
            record = self._decoder.decode(message.value)
        except SchemaUnavailable as exc:
            self._wait_for_schema(message, exc)
            return
        except SerdeError as exc:
            self.tracker.track(message.partition, message.offset)
            self._dead_letter(
                message.partition, message.offset, message.key, message.value, "bad_record", exc
            )
            return
        waiting = self._schema_waits.get(message.partition)
        if waiting is not None and message.offset >= waiting.offset:
            log.info("partition %d: schema resolved, reading again", message.partition)
            del self._schema_waits[message.partition]
        self.tracker.track(message.partition, message.offset)
        polled_us = _now_us()
        max_age = self.settings.worker.max_frame_age_ms
        if max_age and (polled_us - record["gateway_ts_us"]) / 1000.0 > max_age:
            self._skip(message.partition, message.offset, "stale")
            return
        self.batcher.add(FrameItem(message.partition, message.offset, record, polled_us), now)

    def _wait_for_schema(self, message: RawMessage, exc: SchemaUnavailable) -> None:
        """A transient cause (registry down, a writer newer than this worker): hold the
        partition at this record and read it again after a backoff; past the wait bound,
        dead-letter it. Nothing of the partition is committed past it meanwhile."""
        partition, offset, now = message.partition, message.offset, time.monotonic()
        waiting = self._schema_waits.get(partition)
        if waiting is None or waiting.offset != offset:
            waiting = self._schema_waits[partition] = SchemaWait(offset, now)
        waited = now - waiting.since
        if waited * 1000 >= self.settings.worker.unknown_schema_wait_ms:
            del self._schema_waits[partition]
            self.tracker.track(partition, offset)
            detail = f"{exc} (held {waited:.1f} s, {waiting.attempts} retries)"
            self._dead_letter(
                partition, offset, message.key, message.value, "unknown_schema", detail
            )
            return
        waiting.attempts += 1
        waiting.retry_at = now + min(5.0, 0.2 * 2 ** (waiting.attempts - 1))
        if waiting.attempts == 1:
            log.warning("partition %d held at offset %d: %s", partition, offset, exc)
        self.metrics.schema_waits.inc()
        self.consumer.hold(partition, offset)
        self.metrics.held_partitions.set(len(self.consumer.held))

    def _retry_held(self, now: float) -> None:
        held = self.consumer.held
        for partition, waiting in self._schema_waits.items():
            if partition in held and now >= waiting.retry_at:
                self.consumer.release(partition)
        self.metrics.held_partitions.set(len(self.consumer.held))

    def _dead_letter(
        self,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        reason: str,
        detail: object,
    ) -> None:
        """A tracked record that can never be processed goes to the dead-letter topic; its
        offset is finished (committable) only once the broker has the dead letter."""
        log.warning("dead letter %d@%d (%s): %s", offset, partition, reason, detail)
        letter = dead_letter_record(
            source_topic=self._frames.name,
            source_partition=partition,
            source_offset=offset,
            key=key,
            reason=reason,
            detail=str(detail),
            worker=self.identity,
            dead_ts_us=_now_us(),
            value=value,
        )

        def delivered(error: str | None) -> None:
            if error is not None:
                self._crash(f"dead letter not delivered: {error}")
                return
            self.metrics.dead_lettered.labels(reason).inc()
            self.tracker.finish(partition, offset)

        self.producer.produce(
            self._dead_letters.topic,
            self._dead_letters.key(letter),
            self._dead_letters.value(letter),
            delivered,
        )

    def _skip(self, partition: int, offset: int, reason: str) -> None:
        self.metrics.frames_skipped.labels(reason).inc()
        self.tracker.finish(partition, offset)

    def _dispatch(self, frames: list[FrameItem]) -> None:
        """Hand a batch to the decode stage, keeping the group membership alive meanwhile."""
        self.metrics.batch_size.observe(len(frames))
        while not self._stop.is_set():
            try:
                self._prepare_q.put(frames, timeout=0.1)
                return
            except queue.Full:
                self.consumer.pause()
                for message in self.consumer.poll(1, 0):
                    self._accept(message, time.monotonic())

    def _consume_once(self) -> None:
        self._heartbeat = time.monotonic()
        self.consumer.store(self.tracker.take_committable())
        if self._schema_waits:
            self._retry_held(time.monotonic())
        inflight = self.tracker.inflight()
        self.metrics.inflight.set(inflight)
        if inflight >= self._max_inflight:
            if not self.consumer.paused:
                self.metrics.consumer_pauses.inc()
            self.consumer.pause()
        elif self.consumer.paused and inflight < self._max_inflight // 2:
            self.consumer.resume()
        now = time.monotonic()
        wait = self.batcher.time_left(now)
        timeout = 0.1 if wait is None else min(wait, 0.1)
        for message in self.consumer.poll(max(1, self.batcher.room()), timeout):
            self._accept(message, time.monotonic())
        now = time.monotonic()
        while self.batcher.ready(now):
            self._dispatch(self.batcher.take())

    # --- stage threads ---------------------------------------------------------------

    def _thumbnail(self, frame: FrameItem) -> tuple[Grey | None, float]:
        started = time.perf_counter()
        grey = thumbnail(frame.record["image"], self.gate.params.width)
        return grey, (time.perf_counter() - started) * 1e3

    def _gate(self, frames: list[FrameItem]) -> tuple[list[int], dict[int, float]]:
        """Which frames go to the model, and the gated ones' thumbnail times (in order:
        each stream's frames are decided one after the other)."""
        if not self.gate.enabled:
            return list(range(len(frames))), {}
        thumbs = list(self._pool.map(self._thumbnail, frames))
        inferred, gated = [], {}
        for index, (frame, (grey, ms)) in enumerate(zip(frames, thumbs, strict=True)):
            self.metrics.stage_seconds.labels("gate").observe(ms / 1e3)
            record = frame.record
            decision = self.gate.decide(
                record["stream_id"], frame.partition, grey, record["capture_ts_us"] / 1e6
            )
            group = stream_group(record["stream_id"])
            if decision.infer:
                inferred.append(index)
                self.metrics.frames_inferred.labels(group).inc()
            else:
                gated[index] = ms
                self.metrics.frames_gated.labels(group).inc()
        return inferred, gated

    def _prepare(self, frames: list[FrameItem]) -> GatedBatch | None:
        inferred, gated = self._gate(frames)
        if inferred:
            prepared = self.detector.prepare([frames[i].record["image"] for i in inferred])
            prepared.rows = [inferred[r] for r in prepared.rows]
            prepared.errors = {inferred[i]: why for i, why in prepared.errors.items()}
        else:
            prepared = _no_rows()
        stage = self.metrics.stage_seconds
        for ms in prepared.decode_ms:
            stage.labels("decode").observe(ms / 1e3)
        for ms in prepared.preprocess_ms:
            stage.labels("preprocess").observe(ms / 1e3)
        for index, reason in prepared.errors.items():
            frame = frames[index]
            self._dead_letter(
                frame.partition,
                frame.offset,
                frame.record["stream_id"].encode(),
                self._frames_writer.value(frame.record),
                "undecodable",
                f"frame {frame.record['stream_id']}/{frame.record['frame_id']}: {reason}",
            )
        if not prepared.rows and not gated:
            return None
        return GatedBatch(frames, prepared, gated)

    def _submit(self, batch: GatedBatch) -> tuple[GatedBatch, Submitted]:
        if batch.prepared.rows:
            self.metrics.padded_rows.inc(self.detector.padding(batch.prepared))
        return batch, self.detector.submit(batch.prepared)

    def _collect(self, started: tuple[GatedBatch, Submitted]) -> InferredBatch:
        batch, submitted = started
        raw, inference_ms = self.detector.collect(submitted)
        if batch.prepared.rows:
            self.metrics.stage_seconds.labels("infer").observe(inference_ms / 1e3)
        return InferredBatch(batch, raw, inference_ms)

    def _publish(self, inferred: InferredBatch) -> None:
        """Every frame of the batch in order: an inferred frame with its own objects (which
        its stream's next gated frames carry), a gated one with its stream's last ones."""
        batch = inferred.batch
        prepared = batch.prepared
        result = self.detector.finish(prepared, inferred.raw, inferred.inference_ms)
        if prepared.rows:
            self.metrics.stage_seconds.labels("postprocess").observe(result.postprocess_ms / 1e3)
        started = time.perf_counter()
        size = len(prepared.rows)
        found: dict[int, tuple[int, Detections]] = {
            row: (position, detections)
            for position, (row, detections) in enumerate(
                zip(prepared.rows, result.detections, strict=True)
            )
        }
        for index, frame in enumerate(batch.frames):
            source = frame.record
            queue_ms = max(0.0, (frame.polled_us - source["gateway_ts_us"]) / 1e3)
            if index in found:
                position, detections = found[index]
                objects = detected_objects(detections, COCO_CLASSES)
                self._last_objects.put(source["stream_id"], frame.partition, objects)
                timings = stage_timings(
                    queue_ms=queue_ms,
                    decode_ms=prepared.decode_ms[position],
                    preprocess_ms=prepared.preprocess_ms[position],
                    inference_ms=inferred.inference_ms,
                    postprocess_ms=result.postprocess_ms,
                    batch_size=size,
                )
            elif index in batch.gated:
                objects = self._last_objects.get(source["stream_id"], [])
                # Gated: only the thumbnail was decoded, in no batch.
                timings = stage_timings(queue_ms=queue_ms, decode_ms=batch.gated[index])
            else:
                continue  # undecodable: skipped in prepare
            record = detections_record(
                source,
                objects,
                worker_ts_us=_now_us(),
                model=self.model_label,
                worker=self.identity,
                timings=timings,
                inferred=index in found,
                frame_partition=frame.partition,
                frame_offset=frame.offset,
            )
            self.producer.produce(
                self._detections.topic,
                self._detections.key(record),
                self._detections.value(record),
                self._delivery_callback(frame),
            )
        self.metrics.stage_seconds.labels("produce").observe(time.perf_counter() - started)

    def _delivery_callback(self, frame: FrameItem) -> Any:
        # Keep only what the ack needs: the frame's JPEG is released while it waits.
        partition, offset = frame.partition, frame.offset
        capture_us = frame.record["capture_ts_us"]

        def delivered(error: str | None) -> None:
            # Runs on the producer's poll thread.
            if error is not None:
                self._crash(f"detections not delivered: {error}")
                return
            self.metrics.frames_processed.inc()
            self.metrics.e2e_latency.observe(max(0, _now_us() - capture_us) / 1e6)
            self.tracker.finish(partition, offset)

        return delivered

    # --- lifecycle -------------------------------------------------------------------

    def _crash(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    def healthy(self) -> tuple[bool, str]:
        if self._failure:
            return False, f"failed: {self._failure}"
        age = time.monotonic() - self._heartbeat
        return (age < 30, f"poll loop last ran {age:.1f} s ago")

    def ready(self) -> tuple[bool, str]:
        if not self.consumer.joined:
            return False, "joining the consumer group"
        return True, f"in group, partitions {sorted(self._owned)}"

    def run(self) -> int:
        for stage in self._stages:
            stage.start()
        health = None
        if self.settings.worker.metrics_port:
            health = serve_health(
                self.settings.worker.metrics_port, self.metrics.registry, self.healthy, self.ready
            )
        log.info(
            "worker %s: model %s, max batch %d, max wait %.1f ms, gating %s, niceness %d%s",
            self.identity,
            self.model_label,
            self.settings.worker.max_batch,
            self.settings.worker.max_wait_ms,
            "on" if self.gate.enabled else "off",
            os.nice(0),
            ", idle priority (SCHED_IDLE)" if idle_priority() else "",
        )
        try:
            while not self._stop.is_set():
                self._consume_once()
        finally:
            self._shutdown()
            if health is not None:
                health.shutdown()
        if self._failure:
            log.error("worker failed: %s", self._failure)
            return 1
        return 0

    def _shutdown(self) -> None:
        """Finish what was read, deliver it, commit it, leave the group."""
        if self._failure is None:
            while len(self.batcher):
                self._prepare_q.put(self.batcher.take())  # at most max_batch: the engine's limit
            self._prepare_q.put(STOP)
            join_s = 30.0
        else:
            # A crashed stage no longer drains its queue: never block on it. Nothing after
            # the failure is committed, so those frames are re-read by the next owner.
            with contextlib.suppress(queue.Full):
                self._prepare_q.put(STOP, timeout=1.0)
            join_s = 2.0
        for stage in self._stages:
            stage.join(timeout=join_s)
        # After a failure the broker may be out of reach: wait on it briefly, not for long.
        undelivered = self.producer.close(10.0 if self._failure is None else 2.0)
        if undelivered:
            log.warning(
                "%d detections undelivered at shutdown: their frames will be re-read", undelivered
            )
        if self._failure is None:
            self.consumer.store(self.tracker.take_committable())
        self.consumer.close(30.0 if self._failure is None else 5.0)
        self._pool.shutdown(wait=False)
        self.detector.backend.close()


def run_worker(settings: Settings) -> int:
    """Entry point of `vae worker`."""
    if settings.worker.nice:
        os.nice(settings.worker.nice)  # before the model's threads start: they inherit it
    if settings.worker.idle_priority:
        set_idle_priority()  # likewise inherited by every thread started after it
    worker = Worker(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: worker.stop())
    return worker.run()
