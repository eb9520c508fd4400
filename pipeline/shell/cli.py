"""`vae`: one command for every part of the engine."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from pipeline import config
from pipeline.logs import setup_logging

log = logging.getLogger("vae")

Handler = Callable[[argparse.Namespace, config.Settings], int]


def _broker(args: argparse.Namespace, settings: config.Settings) -> int:
    from pipeline.kafka.admin import ensure_topics
    from pipeline.kafka.embedded import EmbeddedBroker

    broker = EmbeddedBroker(port=settings.broker.port, host=settings.broker.host).start()
    kafka = config.KafkaSettings(bootstrap=broker.bootstrap)
    if settings.topics.create:
        counts = ensure_topics(kafka, settings.topics)
        log.info("topics: %s", ", ".join(f"{k} ({v} partitions)" for k, v in counts.items()))
    print(f"embedded broker ready: VAE_KAFKA_BOOTSTRAP={broker.bootstrap}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while broker.running() and not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _topics(args: argparse.Namespace, settings: config.Settings) -> int:
    from pipeline.kafka.admin import ensure_topics, wait_for_broker

    wait_for_broker(settings.kafka, timeout=args.wait)
    for name, partitions in ensure_topics(settings.kafka, settings.topics).items():
        print(f"{name}: {partitions} partitions")
    return 0


def _gateway(args: argparse.Namespace, settings: config.Settings) -> int:
    from pipeline.gateway.server import run_gateway
    from pipeline.kafka.admin import wait_for_broker

    wait_for_broker(settings.kafka, timeout=args.wait)
    run_gateway(settings)
    return 0


def _worker(args: argparse.Namespace, settings: config.Settings) -> int:
    from pipeline.kafka.admin import wait_for_broker
    from pipeline.worker.app import run_worker

    wait_for_broker(settings.kafka, timeout=args.wait)
    return run_worker(settings)


def _replay(args: argparse.Namespace, settings: config.Settings) -> int:
    from connectors.replay import run_replay

    return run_replay(
        source=args.source,
        gateway=args.gateway or settings.client.gateway_url,
        streams=args.streams,
        fps=args.fps,
        duration=args.duration,
        prefix=args.prefix,
        width=args.width,
        quality=args.quality,
        max_frames=args.max_frames,
    )


def _loadgen(args: argparse.Namespace, settings: config.Settings) -> int:
    from loadgen.runner import LoadgenError, LoadgenOptions, run_loadgen

    options = LoadgenOptions(
        gateway=args.gateway or settings.client.gateway_url,
        streams=args.streams,
        fps=args.fps,
        duration=args.duration,
        source=args.source,
        width=args.width,
        quality=args.quality,
        max_frames=args.max_frames,
        subscribe=args.subscribe,
        procs=args.procs,
        drain=args.drain,
        prefix=args.prefix,
        connect_concurrency=args.connect_concurrency,
        connect_timeout=args.connect_timeout,
        max_error_rate=args.max_error_rate,
        report=Path(args.report) if args.report else None,
        plot=Path(args.plot) if args.plot else None,
        live=not args.no_live,
    )
    try:
        _, code = run_loadgen(options)
    except LoadgenError as exc:
        print(f"vae loadgen: {exc}", file=sys.stderr)
        return exc.exit_code
    return code


def _up(args: argparse.Namespace, settings: config.Settings) -> int:
    from pipeline.shell.up import run_up

    return run_up(
        settings,
        source=args.source,
        streams=args.streams,
        fps=args.fps,
        workers=args.workers,
        duration=args.duration,
        explicit_bootstrap=bool(settings.kafka.bootstrap),
        log_dir=Path(args.log_dir),
    )


def _download_with_bar(label: str, fetch: Callable[..., Path]) -> Path:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task(label, total=None)
        return fetch(progress=lambda done, total: bar.update(task, completed=done, total=total))


def _models(args: argparse.Namespace, settings: config.Settings) -> int:
    from pipeline.inference.model_files import CATALOGUE, ModelNotFound, fetch, locate, sha256_of

    if args.action in ("where", "ensure"):
        missing = []
        for name in args.names or list(CATALOGUE):
            try:
                path = locate(name, settings.model.dir)
                print(f"{name}: {path} (sha256 {sha256_of(path)[:16]}...)")
            except ModelNotFound as exc:
                missing.append(name)
                if args.action == "where":
                    print(f"{name}: {exc}")
        if args.action == "where" or not missing:
            return 0
        args.names = missing
    for name in args.names or list(CATALOGUE):
        path = _download_with_bar(f"{name}.onnx", partial(fetch, name, Path(args.dest)))
        print(f"{name}: {path} (sha256 verified)")
    return 0


def _media(args: argparse.Namespace, settings: config.Settings) -> int:
    from connectors import samples

    if args.action in ("where", "ensure"):
        missing = []
        for name in args.names or list(samples.SAMPLES):
            try:
                print(f"{name}: {samples.locate(name)}")
            except samples.SampleNotFound as exc:
                missing.append(name)
                if args.action == "where":
                    print(f"{name}: {exc}")
        if args.action == "where" or not missing:
            return 0
        args.names = missing
    for name in args.names or list(samples.SAMPLES):
        path = _download_with_bar(name, partial(samples.fetch, name, Path(args.dest)))
        print(f"{name}: {path} (sha256 verified)")
    return 0


def _bench_inference(args: argparse.Namespace, settings: config.Settings) -> int:
    from pipeline.shell.bench.inference import run

    return run(args, settings)


def _bench_gateway(args: argparse.Namespace, settings: config.Settings) -> int:
    from loadgen.runner import LoadgenOptions
    from pipeline.shell.bench.gateway import run_bench

    try:
        streams = [int(n) for n in args.streams.split(",") if n.strip()]
    except ValueError:
        print("vae bench gateway: --streams takes numbers, e.g. 1000,5000", file=sys.stderr)
        return 2
    options = LoadgenOptions(
        gateway="ws://127.0.0.1:0",  # each row starts its own gateway
        fps=args.fps,
        duration=args.duration,
        procs=args.procs,
        source=args.source,
        width=args.width,
        quality=args.quality,
        max_frames=args.max_frames,
        max_error_rate=1.0,  # a benchmark reports losses; it does not stop on them
    )
    return run_bench(
        settings,
        options,
        streams,
        args.ceiling_seconds,
        Path(args.out),
        Path(args.markdown) if args.markdown else None,
        Path(args.plot) if args.plot else None,
        "vae bench gateway " + " ".join(sys.argv[3:]),
    )


def _settings(args: argparse.Namespace, settings: config.Settings) -> int:
    if args.markdown:
        print(config.markdown_table())
        return 0
    for option in config.options():
        value = getattr(getattr(settings, option.section), option.name)
        shown = "***" if option.secret and value else repr(value)
        print(f"{option.env}={shown}")
    return 0


def _add_loadgen_frame_arguments(parser: argparse.ArgumentParser) -> None:
    """The frames loadgen sends: shared by `vae loadgen` and `vae bench gateway`."""
    parser.add_argument(
        "--source",
        default="",
        help="Video file, photo, folder of photos, or synthetic[:WxH] "
        "(default: the sample clip if found, else synthetic:320x240).",
    )
    parser.add_argument(
        "--width", type=int, default=320, help="Resize frames to this width (default 320: ~20 KB)."
    )
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality (default 80).")
    parser.add_argument(
        "--max-frames", type=int, default=200, help="Distinct frames cached (default 200)."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vae",
        description="Distributed real-time video analytics: WebSocket gateway -> Kafka -> "
        "batched detection workers -> live WebSocket feed.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Handler, help: str, sections: Sequence[str]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        config.add_arguments(p, sections)
        p.set_defaults(handler=handler)
        return p

    up = command(
        "up",
        _up,
        "Run everything on this machine: broker (embedded unless VAE_KAFKA_BOOTSTRAP is set), "
        "gateway, workers and a replay of the sample clip; prints a summary every few seconds.",
        config.SECTIONS,
    )
    up.add_argument(
        "--source", default="", help="Clip, photo or folder to replay (default: the sample clip)."
    )
    up.add_argument("--streams", type=int, default=4, help="Replayed streams (default 4).")
    up.add_argument(
        "--fps", type=float, default=5.0, help="Frames per second per stream (default 5)."
    )
    up.add_argument("--workers", type=int, default=1, help="Worker processes (default 1).")
    up.add_argument(
        "--duration",
        type=float,
        default=0,
        help="Stop after this many seconds (0: run until Ctrl-C).",
    )
    up.add_argument("--log-dir", default="artifacts/up", help="Where each process's log goes.")

    gateway = command(
        "gateway",
        _gateway,
        "Run the WebSocket gateway (ingest, subscribe, health, metrics, web viewer).",
        ("kafka", "topics", "schema_registry", "gateway", "log"),
    )
    gateway.add_argument("--wait", type=float, default=30, help="Seconds to wait for the broker.")

    worker = command(
        "worker",
        _worker,
        "Run an inference worker (a member of the workers' consumer group).",
        ("kafka", "topics", "schema_registry", "worker", "model", "log"),
    )
    worker.add_argument("--wait", type=float, default=30, help="Seconds to wait for the broker.")

    broker = command(
        "broker",
        _broker,
        "Run the embedded Kafka-compatible broker (Tansu, in memory) and create the topics.",
        ("broker", "topics", "log"),
    )

    topics = command(
        "topics",
        _topics,
        "Create the engine's topics (if missing) and print their partitions.",
        ("kafka", "topics", "log"),
    )
    topics.add_argument("--wait", type=float, default=30, help="Seconds to wait for the broker.")

    replay = command(
        "replay",
        _replay,
        "Push a video file, photo or folder of photos to the gateway as N live streams.",
        ("client", "log"),
    )
    replay.add_argument(
        "source", help="Video file (any format PyAV reads), photo, or folder of photos."
    )
    replay.add_argument("--streams", type=int, default=1, help="Number of streams (default 1).")
    replay.add_argument("--fps", type=float, default=10.0, help="Frames per second per stream.")
    replay.add_argument("--duration", type=float, default=0, help="Seconds to run (0: forever).")
    replay.add_argument("--gateway", default="", help="Gateway URL (default VAE_GATEWAY_URL).")
    replay.add_argument("--prefix", default="replay", help="Stream ids are PREFIX-0, PREFIX-1, ...")
    replay.add_argument(
        "--width", type=int, default=0, help="Resize frames to this width (0: keep)."
    )
    replay.add_argument("--quality", type=int, default=85, help="JPEG quality (1-100).")
    replay.add_argument(
        "--max-frames", type=int, default=0, help="Load at most this many frames (0: all)."
    )

    loadgen = command(
        "loadgen",
        _loadgen,
        "Simulate many cameras against a gateway; measure gateway, ack and end-to-end "
        "latency and count every frame (exit 1 past --max-error-rate, 2 if unreachable).",
        ("client", "log"),
    )
    loadgen.add_argument("--gateway", default="", help="Gateway URL (default VAE_GATEWAY_URL).")
    loadgen.add_argument("--streams", type=int, default=100, help="Streams (default 100).")
    loadgen.add_argument("--fps", type=float, default=1.0, help="Frames/s per stream (default 1).")
    loadgen.add_argument(
        "--duration", type=float, default=60.0, help="Seconds of sending (default 60)."
    )
    _add_loadgen_frame_arguments(loadgen)
    loadgen.add_argument(
        "--subscribe",
        action="store_true",
        help="Also follow detections to measure end-to-end latency (needs workers running).",
    )
    loadgen.add_argument(
        "--procs", type=int, default=1, help="Processes to spread the streams over (default 1)."
    )
    loadgen.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="Seconds after the last send to wait for acks and detections (default 10).",
    )
    loadgen.add_argument(
        "--prefix", default="loadgen", help="Stream ids are PREFIX-0, PREFIX-1, ..."
    )
    loadgen.add_argument(
        "--connect-concurrency",
        type=int,
        default=200,
        help="Handshakes in flight at once, over all processes (default 200).",
    )
    loadgen.add_argument(
        "--connect-timeout", type=float, default=30.0, help="Seconds per handshake (default 30)."
    )
    loadgen.add_argument(
        "--max-error-rate",
        type=float,
        default=0.001,
        help="Exit 1 when refused + lost (+ undetected with --subscribe) frames, or failed "
        "connections, exceed this fraction (default 0.001).",
    )
    loadgen.add_argument("--report", default="", help="Write the JSON report here.")
    loadgen.add_argument("--plot", default="", help="Write a PNG of latency and throughput here.")
    loadgen.add_argument(
        "--no-live", action="store_true", help="No live progress display (for logs and CI)."
    )

    models = command("models", _models, "Find or download model weights.", ("model", "log"))
    models.add_argument(
        "action",
        choices=("fetch", "where", "ensure"),
        help="fetch: download (sha256-checked); where: show what is found; "
        "ensure: fetch only what is not found.",
    )
    models.add_argument("names", nargs="*", help="Models to fetch (default: all known).")
    models.add_argument(
        "--dest", default="models", help="Folder to download into (default ./models)."
    )

    media = command("media", _media, "Find or download the sample media.", ("log",))
    media.add_argument(
        "action",
        choices=("fetch", "where", "ensure"),
        help="fetch: download (sha256-checked); where: show what is found; "
        "ensure: fetch only what is not found.",
    )
    media.add_argument("names", nargs="*", help="Files to fetch (default: all samples).")
    media.add_argument("--dest", default="media", help="Folder to download into (default ./media).")

    bench = sub.add_parser("bench", help="Benchmarks (see docs/benchmarks.md).")
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    inference = benchmarks.add_parser(
        "inference",
        help="Images/s and latency per backend, precision and batch size: raw model, JPEG to "
        "detections, and through the embedded broker.",
    )
    config.add_arguments(inference, ("worker", "model", "log"))
    inference.set_defaults(handler=_bench_inference)
    from pipeline.shell.bench.arguments import add_arguments as add_bench_inference_arguments

    add_bench_inference_arguments(inference)

    gateway_bench = benchmarks.add_parser(
        "gateway",
        help="loadgen at 1,000 / 2,500 / 5,000 / 10,000 streams against a fresh embedded broker "
        "and gateway per row, and a bare producer's ceiling; gateway settings from VAE_GATEWAY_*.",
    )
    config.add_arguments(gateway_bench, ("log",))
    gateway_bench.set_defaults(handler=_bench_gateway)
    gateway_bench.add_argument(
        "--streams", default="1000,2500,5000,10000", help="Rows: stream counts, comma-separated."
    )
    gateway_bench.add_argument("--fps", type=float, default=1.0, help="Frames/s per stream.")
    gateway_bench.add_argument("--duration", type=float, default=60.0, help="Seconds per row.")
    gateway_bench.add_argument("--procs", type=int, default=1, help="loadgen processes.")
    _add_loadgen_frame_arguments(gateway_bench)
    gateway_bench.add_argument(
        "--ceiling-seconds", type=float, default=15.0, help="Seconds of the bare-producer run."
    )
    gateway_bench.add_argument(
        "--out", default="artifacts/bench-gateway", help="Per-row JSON reports and plots."
    )
    gateway_bench.add_argument(
        "--markdown", default="", help="Rewrite the gateway section of this file."
    )
    gateway_bench.add_argument("--plot", default="", help="Write the summary plot here.")

    show = command("settings", _settings, "Print the effective settings (or the README table).", ())
    show.add_argument(
        "--markdown", action="store_true", help="Print every setting as a Markdown table."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = config.load(args)
    except config.SettingsError as exc:
        parser.error(str(exc))
    setup_logging(settings.log.level, args.command)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every known failure surfaces as one clear line, not a traceback
        from pipeline.shell.errors import user_facing

        message = user_facing(exc)
        if message is None:
            raise
        print(f"vae {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
