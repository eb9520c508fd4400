"""`vae up`: the whole engine on one machine, with a live summary.

Starts the embedded broker (unless VAE_KAFKA_BOOTSTRAP names one), creates the topics,
then runs the gateway, the workers and a replay of the sample clip as child processes
(each one's log under --log-dir), and prints a summary line every few seconds: frames
in, detections out, end-to-end latency percentiles, top classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from client.subscribe import subscribe
from connectors import samples
from pipeline import config
from pipeline.kafka.admin import ensure_topics, wait_for_broker
from pipeline.kafka.embedded import EmbeddedBroker
from pipeline.runtime import free_port

log = logging.getLogger(__name__)
console = Console(highlight=False, soft_wrap=True)

SUMMARY_EVERY_S = 5.0


def default_source() -> str:
    """The sample clip (VAE_MEDIA_DIR, ./media or ../shared/media)."""
    return str(samples.locate(samples.DEFAULT_CLIP))


@dataclass
class Child:
    """A process `vae up` started and must stop."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Window:
    """Detections seen since the last summary line."""

    latencies_ms: list[float] = field(default_factory=list)
    classes: Counter[str] = field(default_factory=Counter)
    total: int = 0
    all_latencies_ms: list[float] = field(default_factory=list)
    all_classes: Counter[str] = field(default_factory=Counter)


def _spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches `vae up` only; it stops children in order
        )
    return Child(name, process, log_path)


def _stop(children: list[Child], timeout: float = 15.0) -> None:
    """SIGTERM in reverse start order (sources first), then wait, then SIGKILL stragglers."""
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                console.print(f"[yellow]{child.name} did not stop in {timeout:.0f} s: killing it")
                child.process.kill()
                child.process.wait()


def _wait_http(url: str, timeout: float, children: list[Child]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.process.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with code {child.process.returncode}:\n{child.tail()}"
                )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


def _scrape(url: str) -> dict[str, float]:
    """Sum of each sample name on a /metrics page (labels folded)."""
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


async def _watch(gateway_ws: str, window: Window, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async for message in subscribe(gateway_ws):
                now_us = time.time_ns() // 1000
                latency = (now_us - message["capture_ts_us"]) / 1000.0
                labels = [o["label"] for o in message["objects"]]
                window.latencies_ms.append(latency)
                window.all_latencies_ms.append(latency)
                window.classes.update(labels)
                window.all_classes.update(labels)
                window.total += 1
                if stop.is_set():
                    return
        except OSError:
            await asyncio.sleep(1)


def _percentiles(values: list[float]) -> str:
    if not values:
        return "p50 -, p99 -"
    p50, p99 = np.percentile(np.asarray(values), [50, 99])
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"


def _top(classes: Counter[str], n: int = 4) -> str:
    return ", ".join(f"{label} {count}" for label, count in classes.most_common(n)) or "-"


async def _summaries(
    metrics_url: str, gateway_ws: str, duration: float, children: list[Child]
) -> int:
    window = Window()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(gateway_ws, window, stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    last_in, last_t = 0.0, started
    code = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SUMMARY_EVERY_S)
        now = time.monotonic()
        failed = [c for c in children if c.process.poll() is not None]
        if failed:
            for child in failed:
                code_text = f"exited with code {child.process.returncode}"
                console.print(f"[red]{child.name} {code_text}:[/]\n{child.tail()}")
            code = 1
            break
        try:
            totals = await loop.run_in_executor(None, _scrape, metrics_url)
        except OSError:
            totals = {}
        frames_in = totals.get("vae_gateway_frames_produced_total", 0.0)
        rate_in = (frames_in - last_in) / max(now - last_t, 1e-9)
        rate_out = len(window.latencies_ms) / max(now - last_t, 1e-9)
        console.print(
            f"[bold]{now - started:5.0f}s[/] frames in {frames_in:.0f} ({rate_in:.1f}/s) | "
            f"detections out {window.total} ({rate_out:.1f}/s) | "
            f"end-to-end {_percentiles(window.latencies_ms)} | top: {_top(window.classes)}"
        )
        last_in, last_t = frames_in, now
        window.latencies_ms.clear()
        window.classes.clear()
        if duration and now - started >= duration:
            break
    stop.set()
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    console.print(
        f"[bold]final:[/] {window.total} detections received, end-to-end "
        f"{_percentiles(window.all_latencies_ms)}, top classes: {_top(window.all_classes, 6)}"
    )
    return code


def run_up(
    settings: config.Settings,
    *,
    source: str,
    streams: int,
    fps: float,
    workers: int,
    duration: float,
    explicit_bootstrap: bool,
    log_dir: Path,
) -> int:
    """Entry point of `vae up`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    source = source or default_source()
    broker: EmbeddedBroker | None = None
    children: list[Child] = []
    kafka = settings.kafka
    try:
        if explicit_bootstrap:
            console.print(f"broker: using VAE_KAFKA_BOOTSTRAP={kafka.bootstrap}")
            wait_for_broker(kafka)
        else:
            port = 9092 if _port_free(9092) else free_port()
            broker = EmbeddedBroker(port=port, log_file=log_dir / "broker.log").start()
            kafka = dataclasses.replace(kafka, bootstrap=broker.bootstrap)
            console.print(
                f"broker: embedded Tansu (in memory) on {broker.bootstrap} "
                "(set VAE_KAFKA_BOOTSTRAP to use Kafka, Redpanda or MSK)"
            )
        counts = ensure_topics(kafka, settings.topics)
        console.print("topics: " + ", ".join(f"{k} ({v} partitions)" for k, v in counts.items()))
        env = {**os.environ, **config.to_env(settings), "VAE_KAFKA_BOOTSTRAP": kafka.bootstrap}
        gw = settings.gateway
        children.append(_spawn("gateway", ["gateway"], env, log_dir))
        base_metrics = settings.worker.metrics_port
        for i in range(workers):
            worker_env = {
                **env,
                "VAE_WORKER_METRICS_PORT": str(base_metrics + i if base_metrics else 0),
            }
            children.append(_spawn(f"worker-{i}", ["worker"], worker_env, log_dir))
        http = f"http://127.0.0.1:{gw.port}"
        _wait_http(f"{http}/readyz", 60, children)
        gateway_ws = f"ws://127.0.0.1:{gw.port}"
        children.append(
            _spawn(
                "replay",
                [
                    "replay",
                    source,
                    "--streams",
                    str(streams),
                    "--fps",
                    str(fps),
                    "--gateway",
                    gateway_ws,
                ],
                env,
                log_dir,
            )
        )
        console.print(
            f"[bold green]up[/]: viewer {http}/  ·  "
            f"subscribe {gateway_ws}/v1/subscribe?streams=*  ·  "
            f"ingest {gateway_ws}/v1/ingest/<stream_id>  ·  metrics {http}/metrics"
            + (f", worker :{base_metrics}/metrics" if base_metrics else "")
        )
        console.print(
            f"replaying {Path(source).name} as {streams} streams x {fps:g} fps with {workers} "
            f"worker(s); logs in {log_dir}/ ; Ctrl-C stops"
            + (f" (stopping by itself after {duration:g} s)" if duration else "")
        )
        return asyncio.run(_summaries(f"{http}/metrics", gateway_ws, duration, children))
    finally:
        _stop(children)
        if broker is not None:
            broker.stop()
        console.print("stopped")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
