"""`vae bench gateway` (make bench-gateway): loadgen against a fresh broker + gateway per row.

Each row: a new embedded broker (it keeps every frame in memory, so rows must not share
one), the topics, a `vae gateway` process, then loadgen at N streams x fps. The gateway's
and the broker's CPU are read from /proc over the sending window. The ceiling, in the same
run: a bare confluent-kafka producer (the gateway's producer settings) pushing messages of
the same size to a fresh broker as fast as it can.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from connectors.replay import load_frames
from loadgen.options import LoadgenOptions
from loadgen.runner import START_MARGIN_S, default_source, run_loadgen
from pipeline.auth.tokens import issue
from pipeline.children import Child, spawn_vae, stop
from pipeline.config import KafkaSettings, Settings, TopicSettings
from pipeline.kafka import producer_config
from pipeline.kafka.admin import ensure_topics
from pipeline.kafka.embedded import MEMORY, NULL, EmbeddedBroker
from pipeline.kafka.producer import CallbackProducer
from pipeline.runtime import free_port, process_cpu_seconds, tree_cpu_seconds
from pipeline.shell.bench.results import replace_section
from pipeline.topics import engine_topics

SECTION_START = "<!-- bench:gateway:start -->"
SECTION_END = "<!-- bench:gateway:end -->"
AVRO_OVERHEAD_BYTES = 80  # a frame record's fields around the JPEG (stream id, ids, times)
MEMORY_SHARE = 0.5  # a row may fill at most this share of available memory with frames


@dataclass
class Row:
    streams: int
    fps: float
    duration: float
    processes: int = 1  # VAE_GATEWAY_PROCESSES
    report: dict[str, Any] = field(default_factory=dict)
    gateway_cpu: float = 0.0  # cores busy, over the sending window
    broker_cpu: float = 0.0
    loadgen_exit: int = 0
    note: str = ""

    @property
    def name(self) -> str:
        base = f"{self.streams}x{self.fps:g}"
        return base if self.processes == 1 else f"{base}-{self.processes}procs"

    @property
    def label(self) -> str:
        base = f"{self.streams:,} x {self.fps:g}"
        return base if self.processes == 1 else f"{base}, {self.processes} procs"

    @property
    def acked_per_s(self) -> float:
        return float(self.report.get("acked_per_s", 0))

    @property
    def gateway_cpu_us_per_frame(self) -> float:
        """The gateway's CPU per acked frame over the sending window."""
        return self.gateway_cpu * 1e6 / self.acked_per_s if self.acked_per_s else 0.0

    def per_second_p99(self) -> tuple[float, float]:
        """The median and the worst of the gateway's p99 second by second."""
        values = sorted(
            float(s["gateway"]["p99"]) for s in self.report.get("series", []) if "gateway" in s
        )
        if not values:
            return 0.0, 0.0
        return values[len(values) // 2], values[-1]


STORAGE = {"memory": MEMORY, "null": NULL}


@dataclass
class Ceiling:
    """The bare producer: frames/s delivered, and its own CPU per frame."""

    frames_per_s: float
    cpu_us_per_frame: float


def _available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 8 << 30


class CpuSampler:
    """CPU seconds of a few processes (each with the processes under it: a gateway parent
    and its children), sampled every half second on a thread."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(
                (time.time(), {k: tree_cpu_seconds(p) for k, p in self.pids.items()})
            )
            self._stop.wait(0.5)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def cores(self, name: str, start: float, end: float) -> float:
        """Average cores busy between two wall-clock times (nearest samples inside)."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return 0.0
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return (c1[name] - c0[name]) / max(t1 - t0, 1e-9)


@contextmanager
def _client_token(token: str) -> Iterator[None]:
    """VAE_AUTH_TOKEN for loadgen's processes (they find it as any vae client does)."""
    previous = os.environ.get("VAE_AUTH_TOKEN")
    os.environ["VAE_AUTH_TOKEN"] = token
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("VAE_AUTH_TOKEN", None)
        else:
            os.environ["VAE_AUTH_TOKEN"] = previous


@contextmanager
def _broker_and_gateway(
    settings: Settings, log_dir: Path, storage: str = MEMORY, processes: int = 1
) -> Iterator[tuple[str, Child, EmbeddedBroker]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker(log_file=log_dir / "broker.log", storage=storage).start() as broker:
        kafka = replace(settings.kafka, bootstrap=broker.bootstrap)
        ensure_topics(kafka, engine_topics(settings.topics).all())
        port = free_port()
        # The gateway checks tokens as in production (its cost is part of what is measured):
        # a fresh secret per row, and a token for loadgen.
        secret = secrets.token_urlsafe(32)
        token = issue(secret, ("ingest:*", "subscribe:*", "metrics"), 86400, subject="bench")
        env = {
            **os.environ,
            "VAE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "VAE_GATEWAY_PORT": str(port),
            "VAE_GATEWAY_HOST": "127.0.0.1",
            "VAE_AUTH_SECRET": secret,
            # Every simulated camera connects from 127.0.0.1.
            "VAE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT": os.environ.get(
                "VAE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT", "0"
            ),
            "VAE_GATEWAY_PROCESSES": str(processes),
        }
        gateway = spawn_vae("gateway", ["gateway"], env=env, log_dir=log_dir)
        try:
            _wait_ready(f"http://127.0.0.1:{port}/readyz", gateway, processes)
            with _client_token(token):
                yield f"ws://127.0.0.1:{port}", gateway, broker
        finally:
            stop([gateway], grace_s=20.0)


def _wait_ready(url: str, gateway: Child, processes: int = 1, timeout: float = 60.0) -> None:
    """Until every gateway process answered ready (each answer names its process)."""
    deadline = time.monotonic() + timeout
    ready: set[str] = set()
    while time.monotonic() < deadline:
        if not gateway.running():
            raise RuntimeError(f"the gateway exited with code {gateway.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    ready.add(response.headers.get("X-Gateway-Process", "0"))
                    if len(ready) >= processes:
                        return
                    continue
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the gateway was not ready at {url} within {timeout:.0f} s")


def run_row(
    row: Row, options: LoadgenOptions, settings: Settings, out_dir: Path, storage: str = MEMORY
) -> Row:
    """One row: fresh broker and gateway, loadgen, CPU over the sending window."""
    name = row.name
    logs = out_dir / "logs" / name
    with _broker_and_gateway(settings, logs, storage, row.processes) as (url, gateway, broker):
        window: dict[str, float] = {}

        def on_phase(phase: str) -> None:
            if phase == "sending":
                window["start"] = time.time() + START_MARGIN_S
            elif phase == "draining":
                window.setdefault("end", time.time())

        with CpuSampler({"gateway": gateway.pid, "broker": broker.pid}) as cpu:
            report, code = run_loadgen(
                replace(
                    options,
                    gateway=url,
                    streams=row.streams,
                    fps=row.fps,
                    duration=row.duration,
                    report=str(out_dir / f"{name}.json"),
                    plot=str(out_dir / f"{name}.png"),
                    live=False,
                ),
                on_phase=on_phase,
            )
        start = window.get("start", 0.0)
        end = min(window.get("end", start + row.duration), start + row.duration)
        row.gateway_cpu = cpu.cores("gateway", start + 1, end)
        row.broker_cpu = cpu.cores("broker", start + 1, end)
    row.report = report.to_dict()
    row.loadgen_exit = code
    return row


def measure_ceiling(
    kafka: KafkaSettings,
    topics: TopicSettings,
    linger_ms: float,
    size: int,
    seconds: float,
    storage: str = MEMORY,
) -> Ceiling:
    """Frames/s a bare producer delivers to a fresh broker: the gateway's upper bound; and
    the CPU per frame of this process meanwhile (the producer, librdkafka's threads)."""
    with EmbeddedBroker(storage=storage).start() as broker:
        kafka = replace(kafka, bootstrap=broker.bootstrap)
        ensure_topics(kafka, engine_topics(topics).all())
        conf = producer_config(
            kafka, "bench-ceiling", linger_ms=linger_ms, max_message_bytes=topics.max_message_bytes
        )
        producer = CallbackProducer(conf)
        value = os.urandom(size)
        delivered = [0]

        def on_delivery(error: str | None) -> None:
            if error is None:
                delivered[0] += 1

        keys = [f"ceiling-{i}".encode() for i in range(1000)]
        cpu_started = process_cpu_seconds()
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < seconds:
            try:
                producer.try_produce(topics.frames, keys[sent % 1000], value, on_delivery)
                sent += 1
            except BufferError:
                time.sleep(0.005)  # the poll thread frees room as deliveries complete
        producer.close(60)
        elapsed = time.monotonic() - started
        cpu = process_cpu_seconds() - cpu_started
    return Ceiling(delivered[0] / elapsed, cpu * 1e6 / delivered[0] if delivered[0] else 0.0)


def _fmt(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def markdown(rows: Sequence[Row], ceiling: Ceiling, meta: dict[str, Any], plot: str) -> str:
    lines = [
        SECTION_START,
        "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['machine']}).",
        f"Frames: {meta['frame']}; gateway `linger.ms` {meta['linger_ms']:g}; loadgen in "
        f"{meta['procs']} process(es); broker, gateway and loadgen share the machine; broker "
        f"storage `{meta.get('storage', MEMORY)}`.",
        "",
        "| streams x fps | s | frames/s acked | of ceiling | gateway p50 / p99 / p99.9 ms "
        "| per-second p99 median / worst ms "
        "| broker ack p99 ms | ack rtt p99 ms | lost | refused | gateway CPU | gateway CPU-µs "
        "per frame | broker CPU | loadgen late p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.report
        lat = r.get("latency_ms", {})
        g, b = lat.get("gateway", {}), lat.get("broker_ack", {})
        rtt, lag = lat.get("ack_rtt", {}), lat.get("send_lag", {})
        acked = row.acked_per_s
        counts = r.get("counts", {})
        median_p99, worst_p99 = row.per_second_p99()
        lines.append(
            f"| {row.label} | {row.duration:g} | {acked:,.0f} "
            f"| {acked / ceiling.frames_per_s:.0%} "
            f"| {_fmt(g.get('p50', 0))} / {_fmt(g.get('p99', 0))} / {_fmt(g.get('p99.9', 0))} "
            f"| {_fmt(median_p99)} / {_fmt(worst_p99)} "
            f"| {_fmt(b.get('p99', 0))} | {_fmt(rtt.get('p99', 0))} "
            f"| {counts.get('lost', 0):,} | {counts.get('rejected', 0):,} "
            f"| {row.gateway_cpu:.2f} | {row.gateway_cpu_us_per_frame:,.0f} "
            f"| {row.broker_cpu:.2f} | {_fmt(lag.get('p99', 0))} |"
        )
    lines += [
        "",
        f"Ceiling (bare confluent-kafka producer, same settings and message size, fresh broker): "
        f"**{ceiling.frames_per_s:,.0f} frames/s**, at **{ceiling.cpu_us_per_frame:,.0f} "
        "CPU-µs per frame** of its own (beside the gateway's column).",
        "",
        "CPU columns are cores busy (1.00 = one core) over the sending window; the machine has "
        f"{os.cpu_count()}. *loadgen late* is how far behind its schedule loadgen sent (its "
        "own saturation).",
    ]
    for row in rows:
        if row.note:
            lines.append(f"\n{row.label}: {row.note}")
    if plot:
        lines += ["", f"![Gateway latency and throughput by streams]({plot})"]
    lines += ["", SECTION_END]
    return "\n".join(lines)


def plot_rows(rows: Sequence[Row], ceiling: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    counts = sorted({row.processes for row in rows})
    colours = ("tab:blue", "tab:green", "tab:purple", "tab:brown")
    for n, colour in zip(counts, colours * len(counts), strict=False):
        group = [row for row in rows if row.processes == n]
        streams = [row.streams for row in group]
        suffix = "" if counts == [1] else f" ({n} proc{'s' if n > 1 else ''})"
        for key, style in (("p50", ":"), ("p99", "-"), ("p99.9", "--")):
            left.plot(
                streams,
                [row.report["latency_ms"]["gateway"][key] for row in group],
                style,
                marker="o",
                color=colour,
                label=f"gateway {key}{suffix}",
            )
        left.plot(
            streams,
            [row.report["latency_ms"]["broker_ack"]["p99"] for row in group],
            "-",
            marker="s",
            color="tab:orange",
            label=f"broker ack p99{suffix}",
        )
    left.axhline(40, color="tab:red", lw=0.8, ls="--", label="target p99 40 ms")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("streams (1 fps each)")
    left.set_ylabel("ms")
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    right.bar(
        [row.label.replace(" x ", "\nx ") for row in rows],
        [row.report["acked_per_s"] for row in rows],
        color="tab:blue",
        label="acked frames/s",
    )
    right.axhline(ceiling, color="tab:gray", ls="--", label=f"ceiling {ceiling:,.0f}/s")
    right.set_xlabel("streams")
    right.set_ylabel("frames/s")
    right.legend(fontsize=8)
    fig.suptitle("vae bench gateway")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_bench(
    settings: Settings,
    options: LoadgenOptions,
    streams: Sequence[int],
    ceiling_seconds: float,
    out_dir: Path,
    doc: Path | None,
    plot: Path | None,
    command: str,
    storage: str = "memory",
    processes: Sequence[int] = (1,),
) -> int:
    """Every row (each stream count with each process count), then the ceiling; write
    JSON, the doc section and the plot."""
    console = Console(stderr=True)
    engine = STORAGE[storage]
    source = options.source or default_source()
    frames = load_frames(source, options.width, options.quality, options.max_frames)
    frame_bytes = sum(len(f.jpeg) for f in frames) // len(frames)
    rows = []
    for count, procs in [(c, n) for c in streams for n in processes]:
        row = Row(count, options.fps, options.duration, procs)
        wanted = count * options.fps * options.duration * (frame_bytes + AVRO_OVERHEAD_BYTES)
        budget = MEMORY_SHARE * _available_bytes()
        if engine == MEMORY and wanted > budget:  # the broker would hold every frame
            row.duration = max(10.0, options.duration * budget / wanted)
            row.note = (
                f"shortened to {row.duration:.0f} s: the embedded broker keeps every frame in "
                f"memory and {options.duration:g} s would need {wanted / 2**30:.1f} GiB"
            )
        console.rule(f"{row.label} fps, {row.duration:.0f} s")
        rows.append(run_row(row, replace(options, source=source), settings, out_dir, engine))
    console.rule("ceiling: bare producer")
    ceiling = measure_ceiling(
        settings.kafka,
        settings.topics,
        settings.gateway.linger_ms,
        frame_bytes + AVRO_OVERHEAD_BYTES,
        ceiling_seconds,
        engine,
    )
    console.print(
        f"ceiling: {ceiling.frames_per_s:,.0f} frames/s, "
        f"{ceiling.cpu_us_per_frame:,.0f} CPU-µs per frame"
    )
    meta = {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}, Python {sys.version.split()[0]}",
        "frame": f"{frames[0].width}x{frames[0].height} JPEG, {frame_bytes / 1024:.1f} KB avg "
        f"({Path(source).name})",
        "linger_ms": settings.gateway.linger_ms,
        "procs": options.procs,
        "storage": engine,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "ceiling_frames_per_s": ceiling.frames_per_s,
                "ceiling_cpu_us_per_frame": ceiling.cpu_us_per_frame,
                "rows": [
                    {k: v for k, v in row.__dict__.items() if k != "report"}
                    | {
                        "gateway_cpu_us_per_frame": row.gateway_cpu_us_per_frame,
                        "gateway_p99_per_second_median_worst_ms": row.per_second_p99(),
                    }
                    | {"report": {k: v for k, v in row.report.items() if k != "series"}}
                    for row in rows
                ],
            },
            indent=2,
        )
    )
    plot_ref = ""
    if plot:
        plot_rows(rows, ceiling.frames_per_s, plot)
        if doc:
            plot_ref = os.path.relpath(plot.resolve(), doc.resolve().parent)
    section = markdown(rows, ceiling, meta, plot_ref)
    console.print(section)
    if doc:
        text = doc.read_text() if doc.exists() else "# Benchmarks\n"
        doc.write_text(replace_section(text, section, SECTION_START, SECTION_END))
    return 0
