"""`vae bench analytics`: what one analytics worker keeps up with, per core.

A fresh embedded broker; a rules file with one line and one zone for every stream; one
`vae analytics` child; a producer that fills the detections topic as N streams x F fps
would (synthetic boxes that move across the line), paced for --duration seconds. Every
second the consumer lag (records produced minus records the analytics group committed) is
sampled. Results: records/s consumed, the analytics process's CPU seconds, so records per
CPU-second (per core), the lag's maximum and its last value, and, as the baseline measured
in the same run, the same records through the pure per-stream analytics in this process.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.analytics.convert import frame_in
from pipeline.analytics.stream import StreamAnalytics
from pipeline.children import spawn_vae, stop
from pipeline.kafka import producer_config
from pipeline.kafka.admin import ensure_topics, group_committed
from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.kafka.producer import CallbackProducer
from pipeline.protocol.rules import parse_rules
from pipeline.runtime import pid_cpu_seconds
from pipeline.serde import DetectionsRecord, LocalSchemaIds, stage_timings
from pipeline.shell.bench.options import BenchAnalyticsOptions
from pipeline.topics import engine_topics


def bench_rules(streams: str) -> str:
    """A line down the middle and a zone over the right quarter for the streams matching
    the glob ``streams``: what the analytics bench and the soak apply."""
    return f"""
streams:
  "{streams}":
    lines:
      - {{name: middle, points: [[0.5, 0.0], [0.5, 1.0]]}}
    zones:
      - {{name: right, polygon: [[0.75, 0.0], [1.0, 0.0], [1.0, 1.0], [0.75, 1.0]]}}
"""


RULES = bench_rules("bench-*")


@dataclass
class Result:
    streams: int
    fps: float
    duration_s: float
    produced: int
    consumed: int
    wall_s: float
    records_per_s: float
    analytics_cpu_s: float
    records_per_cpu_s: float
    max_lag: int
    final_lag: int
    baseline_records_per_s: float
    lag_samples: list[tuple[float, int]]


def _record(stream: int, frame: int, fps: float, objects: int) -> DetectionsRecord:
    ts = 1_000_000_000 + int(frame * 1e6 / fps)
    boxes = []
    for k in range(objects):
        x = ((frame * 8 + k * 150 + stream * 7) % 640) if k % 2 == 0 else 100.0 + 60 * k
        y = 100.0 + 40 * k
        boxes.append({"class_id": 0, "label": "person", "score": 0.8,
                      "x1": float(x), "y1": y, "x2": float(x) + 40, "y2": y + 100})  # fmt: skip
    return {
        "stream_id": f"bench-{stream}", "frame_id": frame, "capture_ts_us": ts,
        "gateway_ts_us": ts, "worker_ts_us": ts, "width": 640, "height": 360, "model": "bench",
        "worker": "bench",
        "timings": stage_timings(batch_size=1),
        "objects": boxes,  # type: ignore[typeddict-item]
    }  # fmt: skip


def _wait_ready(log: Path | None, process: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vae analytics exited ({process.returncode}); log: {log}")
        if (
            log is not None
            and log.exists()
            and "[^Worker]: Ready" in log.read_text("utf-8", "replace")
        ):
            return
        time.sleep(0.2)
    raise RuntimeError(f"vae analytics not ready in {timeout:.0f} s; log: {log}")


def _baseline(records: list[DetectionsRecord]) -> float:
    rules = parse_rules(RULES)
    streams: dict[str, StreamAnalytics] = {}
    start = time.perf_counter()
    for offset, record in enumerate(records):
        sid = record["stream_id"]
        analytics = streams.get(sid)
        if analytics is None:
            analytics = streams[sid] = StreamAnalytics(
                sid, rules.for_stream(sid), window_s=60, grace_s=10
            )
        analytics.apply(offset, frame_in(record))
    return len(records) / (time.perf_counter() - start)


def run_bench(o: BenchAnalyticsOptions) -> int:
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_file=out / "broker.log").start()
    child = None
    try:
        env_settings = {"VAE_KAFKA_BOOTSTRAP": broker.bootstrap, "VAE_LOG_LEVEL": "WARNING"}
        settings = config.load(environ=env_settings)
        topics = engine_topics(settings.topics)
        ensure_topics(settings.kafka, topics.all())
        rules = Path(tempfile.mkdtemp()) / "rules.yaml"
        rules.write_text(RULES)
        env = {**os.environ, **env_settings, "VAE_ANALYTICS_RULES": str(rules),
               "VAE_LOG_LEVEL": "INFO"}  # fmt: skip
        child = spawn_vae("analytics", ["analytics"], env=env, log_dir=out)
        _wait_ready(
            child.log_path, child.process, 120.0
        )  # joined: lag is the worker's, not its start
        writer = topics.detections.writer(LocalSchemaIds())
        producer = CallbackProducer(
            producer_config(settings.kafka, "bench", linger_ms=20.0, max_message_bytes=1_048_576)
        )
        errors: list[str] = []

        def committed() -> int:
            return group_committed(settings.kafka, settings.analytics.group_id,
                                   writer.topic, topics.detections.partitions)  # fmt: skip

        frames = int(o.duration * o.fps)
        sent: list[DetectionsRecord] = []
        samples: list[tuple[float, int]] = []
        start = time.monotonic()
        cpu0 = pid_cpu_seconds(child.process.pid)
        next_sample = start + 1.0
        for frame in range(frames):
            due = start + frame / o.fps
            time.sleep(max(0.0, due - time.monotonic()))
            for stream in range(o.streams):
                record = _record(stream, frame, o.fps, o.objects)
                producer.produce(
                    writer.topic, writer.key(record), writer.value(record),
                    lambda error: errors.append(error) if error else None,
                )  # fmt: skip
                sent.append(record)
            if time.monotonic() >= next_sample:
                lag = len(sent) - committed()
                samples.append((round(time.monotonic() - start, 2), lag))
                next_sample += 1.0
        if producer.close(30.0) or errors:
            raise RuntimeError(f"could not fill the detections topic: {errors[:1]}")
        deadline = time.monotonic() + max(60.0, o.duration)
        consumed = committed()
        while consumed < len(sent) and time.monotonic() < deadline:
            time.sleep(1.0)
            consumed = committed()
            samples.append((round(time.monotonic() - start, 2), len(sent) - consumed))
        wall = time.monotonic() - start
        cpu = pid_cpu_seconds(child.process.pid) - cpu0
        result = Result(
            streams=o.streams, fps=o.fps, duration_s=o.duration, produced=len(sent),
            consumed=consumed, wall_s=round(wall, 2), records_per_s=round(consumed / wall, 1),
            analytics_cpu_s=round(cpu, 2),
            records_per_cpu_s=round(consumed / cpu, 1) if cpu > 0 else 0.0,
            max_lag=max((lag for _, lag in samples), default=0),
            final_lag=len(sent) - consumed,
            baseline_records_per_s=round(_baseline(sent), 1), lag_samples=samples,
        )  # fmt: skip
    finally:
        if child is not None:
            stop([child], grace_s=10)
        broker.stop()
    report: dict[str, Any] = asdict(result)
    (out / "analytics.json").write_text(json.dumps(report, indent=2))
    _plot(result, out / "analytics-lag.png")
    print(json.dumps({k: v for k, v in report.items() if k != "lag_samples"}, indent=2))
    return 0 if result.final_lag == 0 else 1


def _plot(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([t for t, _ in result.lag_samples], [lag for _, lag in result.lag_samples])
    ax.set_xlabel("seconds")
    ax.set_ylabel("consumer lag (records)")
    ax.set_title(f"vae analytics: {result.streams} streams x {result.fps:g} fps")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
