"""`vae up`: the whole engine on one machine, with a live summary.

Starts the embedded broker (unless VAE_KAFKA_BOOTSTRAP names one), creates the topics,
then runs the gateway, the workers, one analytics worker (with ``--rules FILE``, its
lines and zones), a replay of the sample clip (or, with --cameras, `vae cameras` on
a cameras file) and the sinks asked for (--sink postgres|mqtt|webhook) as child
processes (each one's log under --log-dir), and prints a summary line every few
seconds: frames in, detections out, end-to-end latency percentiles, top classes.

A new user's machine is not a clean one, and a supervisor stops what it runs with a
SIGTERM and a short grace. So: the ports a user opens (the gateway's, the embedded
broker's) are checked before anything starts, and a taken one fails at once naming the
setting that moves it; the workers' metrics ports, which only `vae up` talks to, are
moved to free ones. Any child that exits ends `vae up` with its log tail. A SIGTERM or
Ctrl-C, even during start-up, stops everything within STOP_GRACE_S, and the children
die with `vae up` even when it is killed outright (pipeline.children).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import signal
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from client.credentials import write_token_file
from client.subscribe import subscribe
from connectors import samples
from connectors.cameras.config import CameraConfigError, load_cameras
from connectors.cameras.options import CamerasOptions
from connectors.replay import ReplayOptions
from connectors.sinks.options import SINK_OPTIONS
from pipeline import config
from pipeline.analytics.rules_file import load_rules
from pipeline.auth.tokens import issue
from pipeline.children import Child, spawn_vae
from pipeline.children import stop as stop_children
from pipeline.kafka.admin import BrokerUnavailable, ensure_topics, wait_for_broker
from pipeline.kafka.embedded import EmbeddedBroker, EmbeddedBrokerError
from pipeline.protocol.rules import RulesError
from pipeline.runtime import free_port
from pipeline.shell.credentials import UP_SCOPES, UP_TOKEN_TTL_S, saved_or_new_secret
from pipeline.shell.options import UpOptions
from pipeline.topics import engine_topics

log = logging.getLogger(__name__)
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

SUMMARY_EVERY_S = 5.0
CHECK_EVERY_S = 0.25  # how soon a child's exit or a signal is noticed while running
STARTUP_TIMEOUT_S = 120.0  # gateway ready and workers healthy (a worker loads its model)
# A supervisor's grace is often 10 s: the children share one deadline, the broker goes last.
STOP_GRACE_S = 7.0
BROKER_GRACE_S = 1.5


def default_source() -> str:
    """The sample clip (VAE_MEDIA_DIR, ./media or ../shared/media)."""
    return str(samples.locate(samples.DEFAULT_CLIP))


class _Stopped(BaseException):
    """A SIGTERM or SIGINT during start-up; unwinds to run_up's clean-up like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _ChildFailed(Exception):
    """A child exited while `vae up` was starting."""

    def __init__(self, child: Child) -> None:
        super().__init__(child.name)
        self.child = child


class _Signals:
    """SIGTERM and SIGINT for the whole of `vae up`, installed before anything starts.

    Starting: a signal unwinds the start-up (raises _Stopped), and what was started is
    stopped. Running: it calls ``on_signal`` (ends the summary loop). Stopping: further
    signals are only noted, so a second Ctrl-C cannot cut the stop short (a SIGKILL can:
    the children die with `vae up` anyway).
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.unwind = True
        self.on_signal: Callable[[], object] | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signum
        if self.on_signal is not None:
            self.on_signal()
        elif first and self.unwind:
            raise _Stopped(signum)


@dataclass
class Window:
    """Detections seen since the last summary line."""

    latencies_ms: list[float] = field(default_factory=list)
    classes: Counter[str] = field(default_factory=Counter)
    total: int = 0
    all_latencies_ms: list[float] = field(default_factory=list)
    all_classes: Counter[str] = field(default_factory=Counter)


def _can_listen(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now.

    Bound as servers bind (SO_REUSEADDR), so a port a previous run left in TIME_WAIT
    counts as free and only one that something listens on counts as taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE  # another error is the service's to report
    return True


def _names(section: str, name: str) -> str:
    """A setting's variable and flag, as the user sets them: 'VAE_X_Y (--x-y)'."""
    option = next(o for o in config.options([section]) if o.name == name)
    return f"{option.env} ({option.flag})"


def _port_problem(settings: config.Settings, explicit_bootstrap: bool) -> str | None:
    """Why `vae up` cannot start on these ports (the ones a user opens), or None."""
    gw = settings.gateway
    if gw.port and not _can_listen(gw.host, gw.port):
        return (
            f"port {gw.port} is in use: stop what holds it or move the gateway with "
            f"{_names('gateway', 'port')}"
        )
    broker = settings.broker
    if not explicit_bootstrap and broker.port and not _can_listen(broker.host, broker.port):
        host = "127.0.0.1" if broker.host in ("", "0.0.0.0") else broker.host
        return (
            f"port {broker.port} is in use: stop what holds it, move the embedded broker with "
            f"{_names('broker', 'port')}, or join the broker already there with "
            f"VAE_KAFKA_BOOTSTRAP={host}:{broker.port}"
        )
    return None


def _worker_ports(base: int, count: int, taken: set[int]) -> list[int]:
    """Metrics port of each worker: the configured one + i where free, else any free one.

    Only `vae up` talks to these, so a taken one is moved rather than fatal (0: off).
    """
    ports = []
    for i in range(count):
        port = base + i if base else 0
        if port and (port in taken or not _can_listen("0.0.0.0", port)):
            port = free_port()
            while port in taken:
                port = free_port()
        taken.add(port)
        ports.append(port)
    return ports


def _with_auth(settings: config.Settings) -> tuple[config.Settings, str]:
    """Settings whose gateway has a key, and the token `vae up`'s own clients send.

    No key configured: the secret saved by an earlier `vae up`, else a new one (saved).
    The token is written to the token file (0600), where vae's clients look for it.
    """
    auth = settings.auth
    if not auth.enabled:
        return settings, ""
    if not (auth.secret or auth.public_key or auth.jwks_url):
        auth = dataclasses.replace(auth, secret=saved_or_new_secret())
        settings = dataclasses.replace(settings, auth=auth)
    token = auth.token
    if auth.secret:
        token = issue(auth.secret, UP_SCOPES, UP_TOKEN_TTL_S, subject="vae-up")
        path = write_token_file(token)
        console.print(f"auth: a token for vae's clients is in {path} (0600)")
    elif not token:
        errors.print(
            "[yellow]vae up: tokens come from an identity provider here; set VAE_AUTH_TOKEN "
            "so the replay and the summary can reach the gateway[/]"
        )
    return settings, token


def _auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)
    return False


def _check_alive(watched: Sequence[Child]) -> None:
    for child in watched:
        if not child.running():
            raise _ChildFailed(child)


def _wait_ready(urls: Sequence[str], timeout: float, watched: Sequence[Child]) -> None:
    """Until every URL answers 200; at once _ChildFailed when a child exits meanwhile."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while True:
        _check_alive(watched)
        pending = [url for url in pending if not _answers(url)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pending[0]} not ready after {timeout:.0f} s")
        time.sleep(0.25)


def _report_exit(child: Child) -> None:
    errors.print(f"[red]{child.name} exited with code {child.returncode}:[/]")
    errors.print(child.tail(), markup=False)


def scrape(
    url: str, token: str = "", *, timeout: float = 1.0, labels: bool = False
) -> dict[str, float]:
    """Sum of each sample name on a /metrics page (labels folded); with ``labels``, also of
    each ``name{label=value}`` (the other labels folded)."""
    request = urllib.request.Request(url, headers=_auth_header(token))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
            for key, value in sample.labels.items() if labels else ():
                labelled = f"{sample.name}{{{key}={value}}}"
                totals[labelled] = totals.get(labelled, 0.0) + sample.value
    return totals


async def _watch(gateway_ws: str, window: Window, stop: asyncio.Event, token: str) -> None:
    while not stop.is_set():
        try:
            async for message in subscribe(gateway_ws, token=token):
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
        except Exception:  # refused or closed (the gateway starting or stopping): retry
            await asyncio.sleep(1)


def _percentiles(values: list[float]) -> str:
    if not values:
        return "p50 -, p99 -"
    p50, p99 = np.percentile(np.asarray(values), [50, 99])
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"


def _top(classes: Counter[str], n: int = 4) -> str:
    return ", ".join(f"{label} {count}" for label, count in classes.most_common(n)) or "-"


def _broker_gone(broker: EmbeddedBroker | None) -> bool:
    return broker is not None and not broker.running()


async def _summaries(
    metrics_url: str,
    gateway_ws: str,
    duration: float,
    watched: Sequence[Child],
    broker: EmbeddedBroker | None,
    signals: _Signals,
    token: str = "",
) -> int:
    window = Window()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(gateway_ws, window, stop, token))
    loop = asyncio.get_running_loop()
    signals.unwind = False
    signals.on_signal = lambda: loop.call_soon_threadsafe(stop.set)
    started = time.monotonic()
    next_summary = started + SUMMARY_EVERY_S
    last_in, last_t = 0.0, started
    code = 0
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_EVERY_S)
            if stop.is_set():
                break
            failed = [c for c in watched if not c.running()]
            if failed or _broker_gone(broker):
                for child in failed:
                    _report_exit(child)
                if _broker_gone(broker):
                    errors.print("[red]the embedded broker exited[/] (see broker.log)")
                code = 1
                break
            now = time.monotonic()
            if now < next_summary:
                continue
            next_summary += SUMMARY_EVERY_S
            try:
                totals = await loop.run_in_executor(None, scrape, metrics_url, token)
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
    finally:
        signals.on_signal = None  # from here a signal is only noted: the stop is under way
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    console.print(
        f"[bold]final:[/] {window.total} detections received, end-to-end "
        f"{_percentiles(window.all_latencies_ms)}, top classes: {_top(window.all_classes, 6)}"
    )
    return code


def run_up(settings: config.Settings, options: UpOptions) -> int:
    """Entry point of `vae up`.

    Exit codes: 0 after a requested stop (Ctrl-C, SIGTERM, --duration), 1 when a child
    or the broker failed, 2 when a port it needs is taken, 128 + the signal when stopped
    before it was up.
    """
    signals = _Signals()
    signals.install()  # first: a signal during start-up must also stop what was started
    streams, fps, workers, duration = (
        options.streams,
        options.fps,
        options.workers,
        options.duration,
    )
    log_dir = Path(options.log_dir)
    durable = Path(options.durable) if options.durable else None
    explicit_bootstrap = bool(settings.kafka.bootstrap)
    broker: EmbeddedBroker | None = None
    started: list[Child] = []
    try:
        problem = _port_problem(settings, explicit_bootstrap)
        if settings.gateway.tls_cert:
            problem = (
                "VAE_GATEWAY_TLS_CERT is for `vae gateway`; `vae up` runs on this machine "
                "over plain http://127.0.0.1 (unset it here)"
            )
        if problem:
            errors.print(f"vae up: {problem}", markup=False)
            return 2
        if options.cameras:
            try:  # a bad cameras file fails before anything starts
                cameras = load_cameras(Path(options.cameras))
            except CameraConfigError as exc:
                errors.print(f"vae up: {exc}", markup=False)
                return 2
        for sink in options.sinks:  # a sink missing its destination fails now, naming it
            try:
                config.load_options(SINK_OPTIONS[sink])
            except config.SettingsError as exc:
                errors.print(f"vae up: --sink {sink}: {exc}", markup=False)
                return 2
        if settings.analytics.rules:  # a bad rules file fails now, naming the key
            rules = Path(settings.analytics.rules).resolve()
            load_rules(str(rules))
            analytics = dataclasses.replace(settings.analytics, rules=str(rules))
            settings = dataclasses.replace(settings, analytics=analytics)
        log_dir.mkdir(parents=True, exist_ok=True)
        source = "" if options.cameras else options.source or default_source()
        gw = settings.gateway
        if not gw.port:  # 0: any free port (`vae up` must know it to print its URLs)
            gw = dataclasses.replace(gw, port=free_port())
            settings = dataclasses.replace(settings, gateway=gw)
        kafka = settings.kafka
        if explicit_bootstrap:
            console.print(f"broker: using VAE_KAFKA_BOOTSTRAP={kafka.bootstrap}")
            wait_for_broker(kafka)
        else:
            broker = EmbeddedBroker(
                port=settings.broker.port,
                host=settings.broker.host,
                log_file=log_dir / "broker.log",
                data_dir=durable,
            ).start()
            kafka = dataclasses.replace(kafka, bootstrap=broker.bootstrap)
            storage = "in memory" if durable is None else f"durable, data in {durable}"
            console.print(
                f"broker: embedded Tansu ({storage}) on {broker.bootstrap} "
                "(set VAE_KAFKA_BOOTSTRAP to use Kafka, Redpanda or MSK)"
            )
        settings, token = _with_auth(settings)
        counts = ensure_topics(kafka, engine_topics(settings.topics).all())
        console.print("topics: " + ", ".join(f"{k} ({v} partitions)" for k, v in counts.items()))
        env = {
            **os.environ,
            **config.to_env(settings),
            "VAE_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "PYTHONUNBUFFERED": "1",  # log tails shown on failure are up to date
            "VAE_AUTH_TOKEN": token,  # the replay's (a child finds it without being told)
        }
        base_metrics = settings.worker.metrics_port
        ports = _worker_ports(base_metrics, workers, {gw.port, settings.broker.port})
        for i, port in enumerate(ports):
            if port != base_metrics + i:
                console.print(
                    f"[yellow]worker-{i}: port {base_metrics + i} is in use: metrics on :{port}"
                )
        started.append(spawn_vae("gateway", ["gateway"], env=env, log_dir=log_dir))
        for i, port in enumerate(ports):
            worker_env = {**env, "VAE_WORKER_METRICS_PORT": str(port)}
            if options.workers_nice:
                worker_env["VAE_WORKER_NICE"] = str(options.workers_nice)
            if options.workers_idle:
                worker_env["VAE_WORKER_IDLE_PRIORITY"] = "true"
            started.append(spawn_vae(f"worker-{i}", ["worker"], env=worker_env, log_dir=log_dir))
        # One stream-analytics worker; `--rules FILE` reaches it as VAE_ANALYTICS_RULES.
        started.append(spawn_vae("analytics", ["analytics"], env=env, log_dir=log_dir))
        http = f"http://127.0.0.1:{gw.port}"
        health = [f"http://127.0.0.1:{port}/healthz" for port in ports if port]
        _wait_ready([f"{http}/readyz", *health], STARTUP_TIMEOUT_S, started)
        gateway_ws = f"ws://127.0.0.1:{gw.port}"
        if options.cameras:
            status_port = free_port()
            runner = CamerasOptions(cameras=options.cameras, gateway=gateway_ws, port=status_port)
            runner_env = {**env, **config.to_env(runner)}
            started.append(spawn_vae("cameras", ["cameras"], env=runner_env, log_dir=log_dir))
            feeding = (
                f"{len(cameras)} camera(s) from {options.cameras} (status "
                f"http://127.0.0.1:{status_port}/v1/cameras)"
            )
        else:
            replay = ReplayOptions(source=source, streams=streams, fps=fps, gateway=gateway_ws)
            replay_env = {**env, **config.to_env(replay)}
            started.append(spawn_vae("replay", ["replay"], env=replay_env, log_dir=log_dir))
            feeding = f"replaying {Path(source).name} as {streams} streams x {fps:g} fps"
        for sink in options.sinks:  # each in its own group, with its own health port
            sink_port = free_port()
            sink_env = {**env, "VAE_SINK_PORT": str(sink_port)}
            started.append(spawn_vae(f"sink-{sink}", ["sink", sink], env=sink_env, log_dir=log_dir))
            feeding += f"; sink {sink} (http://127.0.0.1:{sink_port}/readyz)"
        worker_metrics = ", ".join(f":{port}/metrics" for port in ports if port)
        viewer = f"{http}/#token={token}" if token else f"{http}/"
        console.print(
            f"[bold green]up[/]: viewer {viewer}  ·  "
            f"subscribe {gateway_ws}/v1/subscribe?streams=*  ·  "
            f"ingest {gateway_ws}/v1/ingest/<stream_id>  ·  metrics {http}/metrics"
            + (f", worker{'s' if workers > 1 else ''} {worker_metrics}" if worker_metrics else "")
        )
        console.print(
            f"{feeding} with {workers} worker(s); logs in {log_dir}/ ; Ctrl-C stops"
            + (f" (stopping by itself after {duration:g} s)" if duration else "")
        )
        return asyncio.run(
            _summaries(f"{http}/metrics", gateway_ws, duration, started, broker, signals, token)
        )
    except _Stopped as stopped:
        console.print(f"{signal.Signals(stopped.signum).name} while starting: stopping")
        return 128 + stopped.signum
    except _ChildFailed as failed:
        _report_exit(failed.child)
        return 1
    except RulesError as exc:
        errors.print(f"vae up: --rules: {exc}", markup=False)
        return 2
    except (TimeoutError, EmbeddedBrokerError, BrokerUnavailable) as exc:
        errors.print(f"vae up: {exc}", markup=False)
        return 1
    finally:
        signals.unwind, signals.on_signal = False, None
        # Sources first (they feed the rest), then the gateway and the workers together,
        # the broker last: all within STOP_GRACE_S.
        stop_children(started, grace_s=STOP_GRACE_S - BROKER_GRACE_S, first=("replay", "cameras"))
        if broker is not None:
            broker.stop(grace_s=BROKER_GRACE_S)
        if started or broker is not None:
            console.print("stopped")
        signals.restore()
