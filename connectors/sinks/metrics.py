"""A sink's Prometheus series, on its own registry (each labelled with the sink's name)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline.metrics import BATCH_BUCKETS, STAGE_BUCKETS


class SinkMetrics:
    """What an operator watches of one sink process."""

    def __init__(self, sink: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        labels = {"sink": sink}
        self.records_read = Counter(
            "vae_sink_records_read", "Records read, by topic.", ["sink", "topic"], registry=r
        )
        self.written = Counter(
            "vae_sink_records_written",
            "Records the destination holds (acknowledged: committed, PUBACKed, 2xx), by kind "
            "(event, counts, detections); a record read again after a restart counts again.",
            ["sink", "kind"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "vae_sink_dead_lettered",
            "Records given up on and written to the sinks' dead-letter topic, by reason.",
            ["sink", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "vae_sink_write_retries",
            "Batches the destination could not take (down, timed out), each retried with backoff.",
            ["sink"],
            registry=r,
        ).labels(**labels)
        self.destination_up = Gauge(
            "vae_sink_destination_up",
            "1 while the destination took the last write (or the connection is open), else 0.",
            ["sink"],
            registry=r,
        ).labels(**labels)
        self.batch_records = Histogram(
            "vae_sink_batch_records",
            "Records per batch written.",
            ["sink"],
            buckets=(*BATCH_BUCKETS, 256, 512, 1024),
            registry=r,
        ).labels(**labels)
        self.write_seconds = Histogram(
            "vae_sink_write_seconds",
            "Seconds from a batch's write to its commit (retries included).",
            ["sink"],
            buckets=STAGE_BUCKETS,
            registry=r,
        ).labels(**labels)
        self.commits = Counter(
            "vae_sink_commits", "Batches whose offsets were committed.", ["sink"], registry=r
        ).labels(**labels)
        self.commit_failures = Counter(
            "vae_sink_commit_failures",
            "Commits the broker refused (the batch is read and written again, idempotently).",
            ["sink"],
            registry=r,
        ).labels(**labels)
        self.uncommitted = Gauge(
            "vae_sink_uncommitted_records",
            "Records read and not yet committed (waiting in a batch or being written).",
            ["sink"],
            registry=r,
        ).labels(**labels)
        self.consumer_lag = Gauge(
            "vae_sink_consumer_lag",
            "Records behind each partition's end.",
            ["sink", "topic", "partition"],
            registry=r,
        )
        self.answers = Counter(
            "vae_sink_webhook_answers",
            "Webhook answers by HTTP status, or 'unreachable'.",
            ["sink", "status"],
            registry=r,
        )
        self.sink = sink
