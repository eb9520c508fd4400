"""Prometheus metrics of the gateway and the worker: the numbers an operator watches.

Each service builds its metrics on its own registry, so tests can run several services
in one process and /metrics shows only that service's series.

Several gateway processes on one port (VAE_GATEWAY_PROCESSES) use prometheus_client's
multiprocess mode: their parent sets ``PROMETHEUS_MULTIPROC_DIR``, every value lives in a
file there, and /metrics on any of them sums every process's series (gauges of live
processes only: ``livesum``).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

# The *_created series double every counter's output and no dashboard uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Sub-millisecond to seconds: gateway and end-to-end latencies live between 1 ms and 1 s.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
    0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
STAGE_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class GatewayMetrics:
    """Ingest, fan-out and latency series of one gateway process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_received = Counter(
            "vae_gateway_frames_received", "Frames read from ingest sockets.", registry=r
        )
        self.frames_produced = Counter(
            "vae_gateway_frames_produced", "Frames the broker acknowledged.", registry=r
        )
        self._rejected: dict[str, Counter] = {}
        self.frames_rejected = Counter(
            "vae_gateway_frames_rejected",
            "Frames refused, by reason (the error code sent to the sender).",
            ["reason"],
            registry=r,
        )
        self.auth_refused = Counter(
            "vae_gateway_auth_refused",
            "Requests and handshakes refused, by reason: missing, malformed, expired, forged, "
            "invalid (a bad token: 401), scope (a good token without the grant: 403), origin "
            "(a browser page of a foreign origin: 403).",
            ["reason"],
            registry=r,
        )
        self.limited = Counter(
            "vae_gateway_limited",
            "Requests and connections refused by a limit: connections, connections_per_client, "
            "subscribers_per_token, handshake_timeout, request_head (frames over the "
            "per-stream rate: vae_gateway_frames_rejected_total with reason rate_limited).",
            ["limit"],
            registry=r,
        )
        self.bytes_received = Counter(
            "vae_gateway_bytes_received", "Bytes of frames read from ingest sockets.", registry=r
        )
        self.gateway_latency = Histogram(
            "vae_gateway_latency_seconds",
            "Frame receipt to broker acknowledgement.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.broker_ack_latency = Histogram(
            "vae_gateway_broker_ack_seconds",
            "produce() to the delivery report on the producer's poll thread (librdkafka's "
            "timing): the share of vae_gateway_latency_seconds spent outside the event loop.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.producer_queue = Gauge(
            "vae_gateway_producer_queue_depth",
            "Messages in the producer's local queue or in flight.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ingest_connections = Gauge(
            "vae_gateway_ingest_connections",
            "Open ingest sockets.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.subscribers = Gauge(
            "vae_gateway_subscribers",
            "Open subscribe sockets.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.subscriber_dropped = Counter(
            "vae_gateway_subscriber_dropped",
            "Messages dropped from full subscriber queues (oldest first).",
            registry=r,
        )
        self.detections_received = Counter(
            "vae_gateway_detections_received",
            "Detections records read from the results topic.",
            registry=r,
        )
        self.messages_sent = Counter(
            "vae_gateway_subscriber_messages_sent",
            "Detections messages written to subscribe sockets.",
            registry=r,
        )
        self.e2e_latency = Histogram(
            "vae_end_to_end_latency_seconds",
            "Capture time to the detections reaching the gateway for fan-out.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "vae_gateway_gc_pause_seconds",
            "Python garbage-collector pauses, by generation: the event loop stands still "
            "meanwhile (thousands of sockets make generation 2 slow).",
            ["generation"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.frame_history_bytes = Gauge(
            "vae_gateway_frame_history_bytes",
            "Bytes of recent frames kept for viewers (VAE_GATEWAY_FRAME_HISTORY_MBYTES bounds it).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.events_indexed = Gauge(
            "vae_gateway_events_indexed",
            "Events the gateway finds by id for their snapshot and clip "
            "(VAE_GATEWAY_EVENTS_INDEX bounds it; with several processes, each keeps its "
            "own index and this is the smallest: those found whichever process answers).",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.media_requests = Counter(
            "vae_gateway_media_requests",
            "Snapshot and clip requests, by kind (snapshot, clip) and HTTP status.",
            ["kind", "status"],
            registry=r,
        )
        self.media_seconds = Histogram(
            "vae_gateway_media_seconds",
            "Time to make a snapshot or clip: reading vae.frames, drawing or encoding.",
            ["kind"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.media_in_flight = Gauge(
            "vae_gateway_media_in_flight",
            "Snapshots and clips being made (VAE_GATEWAY_MEDIA_CONCURRENCY bounds it, per "
            "gateway process).",
            registry=r,
            multiprocess_mode="livesum",
        )

    def rejected(self, reason: str) -> Counter:
        """vae_gateway_frames_rejected_total of one reason (bound once per reason: a camera
        refused frame after frame costs no label lookup per frame)."""
        child = self._rejected.get(reason)
        if child is None:
            child = self._rejected[reason] = self.frames_rejected.labels(reason)
        return child

    def gc_paused(self, generation: int, seconds: float) -> None:
        """Where runtime.time_gc_pauses reports each collector pause."""
        self.gc_pause.labels(str(generation)).observe(seconds)

    def exposition(self) -> bytes:
        """The text /metrics serves: this registry's, or every gateway process's summed."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, folder)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


class WorkerMetrics:
    """Consumption, batching, per-stage time and lag of one worker process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames_consumed = Counter(
            "vae_worker_frames_consumed", "Frames read from the frames topic.", registry=r
        )
        self.frames_processed = Counter(
            "vae_worker_frames_processed", "Frames whose detections were delivered.", registry=r
        )
        self.frames_skipped = Counter(
            "vae_worker_frames_skipped",
            "Frames not run through the model on purpose, by reason (stale).",
            ["reason"],
            registry=r,
        )
        self.frames_inferred = Counter(
            "vae_worker_frames_inferred",
            "Frames run through the model, by stream group (the stream id up to its first "
            "'-', '_', '/' or ':').",
            ["group"],
            registry=r,
        )
        self.frames_gated = Counter(
            "vae_worker_frames_gated",
            "Frames motion gating kept from the model (nothing moved): their detections carry "
            "the stream's last inferred objects; by stream group.",
            ["group"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "vae_worker_frames_dead_lettered",
            "Records sent to the dead-letter topic, by reason (bad_record, unknown_schema, "
            "undecodable).",
            ["reason"],
            registry=r,
        )
        self.schema_waits = Counter(
            "vae_worker_schema_waits",
            "Times a partition was held because a record's schema id could not be resolved.",
            registry=r,
        )
        self.held_partitions = Gauge(
            "vae_worker_held_partitions",
            "Partitions paused until a record's schema id can be resolved.",
            registry=r,
        )
        self.batch_size = Histogram(
            "vae_worker_batch_size",
            "Frames per inference batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "vae_worker_stage_seconds",
            "Seconds per stage (decode and preprocess per frame; infer, postprocess, "
            "produce per batch).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "vae_worker_inflight_frames",
            "Frames consumed whose detections are not yet delivered.",
            registry=r,
        )
        self.consumer_pauses = Counter(
            "vae_worker_consumer_pauses",
            "Times the consumer paused its partitions because frames in flight hit the limit.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "vae_worker_consumer_lag",
            "Frames behind the end of each assigned partition.",
            ["partition"],
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "vae_worker_assigned_partitions",
            "Partitions of the frames topic assigned here.",
            registry=r,
        )
        self.e2e_latency = Histogram(
            "vae_worker_capture_to_publish_seconds",
            "Capture time to the detections being delivered to the results topic.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.backend = Gauge(
            "vae_worker_backend_info",
            "The inference backend VAE_BACKEND chose (1 for the one in use).",
            ["backend", "precision"],
            registry=r,
        )
        self.padded_rows = Counter(
            "vae_worker_padded_rows",
            "Rows of padding run by the model: batches rounded up to the engine's next bucket.",
            registry=r,
        )
