"""The parent of a loadgen run: frames, a reachability check, N processes, live progress.

Processes connect their streams, report in, and all start sending at one wall-clock time
the parent hands out, so the ramp of 10,000 handshakes never overlaps the measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI

from client.credentials import auth_headers
from connectors.replay import load_frames
from loadgen.histogram import LatencyHistogram
from loadgen.options import EXIT_ERRORS, EXIT_OK, EXIT_UNREACHABLE, LoadgenError, LoadgenOptions
from loadgen.plot import plot_report
from loadgen.report import Report, merge
from loadgen.session import SessionSpec, run_session
from loadgen.stats import SERIES_DIGITS

START_MARGIN_S = 1.0  # between "everyone connected" and the first slot


def default_source() -> str:
    """The sample clip (found like the rest of the media), else synthetic frames."""
    from connectors.samples import DEFAULT_CLIP, SampleNotFound, locate

    try:
        return str(locate(DEFAULT_CLIP))
    except SampleNotFound:
        return "synthetic:320x240"


async def probe(gateway: str, wait_s: float = 5.0) -> None:
    """Fail fast, with the reason, when nothing answers at the gateway URL."""
    url = f"{gateway.rstrip('/')}/v1/subscribe?streams=__loadgen_probe__"
    try:
        async with connect(
            url, open_timeout=wait_s, close_timeout=1, additional_headers=auth_headers()
        ) as ws:
            await asyncio.wait_for(ws.recv(), wait_s)
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        raise LoadgenError(
            f"gateway unreachable at {gateway}: {exc or type(exc).__name__}. "
            "Is `vae gateway` (or `make up`) running, and is --gateway right?"
        ) from exc


class _Progress:
    """Latest counters of each process and the merged window histograms."""

    def __init__(self, options: LoadgenOptions) -> None:
        self.options = options
        self.counters: dict[int, dict[str, int]] = {}
        self.window: dict[str, LatencyHistogram] = {}
        self.window_started = time.monotonic()
        self.phase = "connecting"
        self.started_at: float | None = None
        self.last_rate = 0.0
        self._last_sent = (time.monotonic(), 0)

    def update(self, index: int, counters: dict[str, int], window: dict[str, bytes]) -> None:
        self.counters[index] = counters
        for name, blob in window.items():
            h = LatencyHistogram.decode(blob, SERIES_DIGITS)
            if name in self.window:
                self.window[name].add(h)
            else:
                self.window[name] = h

    def total(self, name: str) -> int:
        return sum(c.get(name, 0) for c in self.counters.values())

    def render(self) -> Group:
        now = time.monotonic()
        sent = self.total("sent")
        then, before = self._last_sent
        if now - then >= 1.0:
            self.last_rate = (sent - before) / (now - then)
            self._last_sent = (now, sent)
        o = self.options
        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("phase", "connected", "sent", "sent/s", "acked", "refused", "detected"):
            table.add_column(column, justify="right")
        for column in ("gateway p50/p99 ms", "ack rtt p99 ms", "e2e p99 ms"):
            table.add_column(column, justify="right")

        def window(name: str, *qs: float) -> str:
            h = self.window.get(name)
            return "/".join(f"{h.percentile_ms(q):.1f}" for q in qs) if h and h.count else "-"

        table.add_row(
            self.phase,
            f"{self.total('connected'):,}/{o.streams:,}",
            f"{sent:,}",
            f"{self.last_rate:,.0f}",
            f"{self.total('acked'):,}",
            f"{self.total('rejected'):,}",
            f"{self.total('detected'):,}" if o.subscribe else "-",
            window("gateway", 50, 99),
            window("ack_rtt", 99),
            window("end_to_end", 99),
        )
        if now - self.window_started >= 5.0:  # a rolling view: percentiles of the last ~5 s
            self.window.clear()
            self.window_started = now
        elapsed = 0.0 if self.started_at is None else max(0.0, time.time() - self.started_at)
        bar = ProgressBar(total=o.duration, completed=min(elapsed, o.duration), width=60)
        return Group(table, bar)


class _LogLines:
    """--no-live: a plain progress line every few seconds (for logs and CI)."""

    def __init__(self, progress: _Progress, console: Console) -> None:
        self.progress, self.console = progress, console
        self.last = time.monotonic()

    def refresh(self) -> None:
        if time.monotonic() - self.last >= 5.0:
            self.last = time.monotonic()
            p = self.progress
            gateway = p.window.get("gateway")
            p99 = f"{gateway.percentile_ms(99):.1f} ms" if gateway and gateway.count else "-"
            self.console.print(
                f"loadgen {p.phase}: connected {p.total('connected'):,}, sent {p.total('sent'):,}, "
                f"acked {p.total('acked'):,}, refused {p.total('rejected'):,}, gateway p99 {p99}"
            )
            p.window.clear()


class _LiveTable:
    """The rich live display: a table of counts and rolling percentiles, and a progress bar."""

    def __init__(self, progress: _Progress, live: Live) -> None:
        self.progress, self.live = progress, live

    def refresh(self) -> None:
        self.live.update(self.progress.render())


@contextlib.contextmanager
def _display(progress: _Progress, console: Console, live: bool) -> Iterator[_LiveTable | _LogLines]:
    if not live:
        yield _LogLines(progress, console)
        return
    with Live(progress.render(), console=console, refresh_per_second=2) as display:
        yield _LiveTable(progress, display)


def _split(options: LoadgenOptions) -> list[tuple[str, ...]]:
    ids = [f"{options.prefix}-{i}" for i in range(options.streams)]
    return [tuple(ids[p :: options.procs]) for p in range(options.procs)]


def run_loadgen(
    options: LoadgenOptions,
    console: Console | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> tuple[Report, int]:
    """Run the whole load test; returns the report and the exit code it deserves.

    ``on_phase`` hears "sending" when the first slot is due and "draining" when the first
    process has finished (a benchmark times the system under test between the two).
    """
    console = console or Console(stderr=True)
    options.validate()
    if not options.gateway:
        raise LoadgenError("no gateway URL: give --gateway (or VAE_GATEWAY_URL)")
    asyncio.run(probe(options.gateway))
    source = options.source or default_source()
    frames = load_frames(source, options.width, options.quality, options.max_frames)
    frame_kb = sum(len(f.jpeg) for f in frames) / len(frames) / 1024
    jpegs = tuple(f.jpeg for f in frames)
    console.print(
        f"loadgen: {options.streams:,} streams x {options.fps:g} fps for {options.duration:g} s "
        f"-> {options.gateway} ({options.procs} process(es); {len(frames)} frames of "
        f"{frames[0].width}x{frames[0].height}, {frame_kb:.1f} KB avg, from {source})"
    )
    ctx = multiprocessing.get_context("spawn")
    outbox = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    procs = []
    for index, ids in enumerate(_split(options)):
        spec = SessionSpec(
            index=index,
            gateway=options.gateway,
            stream_ids=ids,
            frames=jpegs,
            fps=options.fps,
            duration=options.duration,
            drain=options.drain,
            subscribe=options.subscribe,
            connect_concurrency=max(1, options.connect_concurrency // options.procs),
            connect_timeout=options.connect_timeout,
        )
        process = ctx.Process(
            target=run_session, args=(spec, outbox, go, start_at), name=f"loadgen-{index}"
        )
        process.start()
        procs.append(process)

    progress = _Progress(options)

    def release() -> None:
        """Start everyone (once): all connected, or a process failed and the rest go on."""
        if not go.is_set():
            start_at.value = time.time() + START_MARGIN_S
            progress.started_at = start_at.value
            progress.phase = "sending"
            go.set()
            if on_phase:
                on_phase("sending")

    results: dict[int, dict[str, Any]] = {}
    errors: dict[int, str] = {}
    connected: dict[int, int] = {}
    try:
        with _display(progress, console, options.live) as live:
            while len(results) + len(errors) < len(procs):
                try:
                    message = outbox.get(timeout=0.5)
                except queue_module.Empty:
                    for index, process in enumerate(procs):
                        if not process.is_alive() and index not in results and index not in errors:
                            errors[index] = f"process exited with code {process.exitcode}"
                            release()
                    live.refresh()
                    continue
                kind, index = message[0], message[1]
                if kind == "progress":
                    progress.update(index, message[2], message[3])
                elif kind == "connected":
                    connected[index] = message[2]
                    if len(connected) == len(procs):
                        release()
                elif kind == "result":
                    results[index] = message[2]
                    if progress.phase != "draining" and on_phase:
                        on_phase("draining")
                    progress.phase = "draining"
                elif kind == "error":
                    errors[index] = message[2]
                    release()  # let the others run; the error is reported at the end
                live.refresh()
    finally:
        release()
        for process in procs:
            process.join(timeout=options.drain + 10)
            if process.is_alive():
                process.terminate()
    if errors and not results:
        raise LoadgenError("every loadgen process failed: " + "; ".join(errors.values()))
    config = {**asdict(options), "source": source, "frame_kb": round(frame_kb, 2)}
    config["report"] = options.report or None
    config["plot"] = options.plot or None
    config["frame_size"] = f"{frames[0].width}x{frames[0].height}"
    report = merge(config, [results[i] for i in sorted(results)])
    report.render(Console())
    if options.report:
        report.write_json(Path(options.report))
        console.print(f"report: {options.report}")
    if options.plot:
        plot_report(report, Path(options.plot))
        console.print(f"plot: {options.plot}")
    return report, _verdict(report, options, errors, console)


def _verdict(
    report: Report, options: LoadgenOptions, errors: dict[int, str], console: Console
) -> int:
    if errors:
        console.print(f"[red]loadgen processes failed: {errors}[/red]")
        return EXIT_ERRORS
    if report.counts.get("connected", 0) == 0:
        console.print(
            f"[red]no stream could connect to {options.gateway}: "
            f"{dict(report.connect_failures)}[/red]"
        )
        return EXIT_UNREACHABLE
    failed = sum(report.connect_failures.values())
    if failed / options.streams > options.max_error_rate:
        console.print(f"[red]{failed} of {options.streams} streams could not connect[/red]")
        return EXIT_ERRORS
    if report.error_rate() > options.max_error_rate:
        console.print(
            f"[red]error rate {report.error_rate():.4%} is above --max-error-rate "
            f"{options.max_error_rate:.4%}[/red]"
        )
        return EXIT_ERRORS
    return EXIT_OK
