"""`vae`: one command for every part of the engine and the tools around it.

The shell is the top layer: it may import the engine (pipeline.*), the connectors, loadgen
and the client; nothing imports it. Each command is one entry of ``COMMANDS``: the service
sections it takes (``--<section>-<name>`` flags) and its own option classes (declared once,
beside the code that uses them, with ``pipeline.config.setting``). Heavy modules are
imported inside the handlers, so `vae --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from connectors.cameras.options import CamerasOptions
from connectors.replay import ReplayOptions
from connectors.sinks.options import MqttOptions, PostgresOptions, SinkOptions, WebhookOptions
from loadgen.options import FRAME_OPTIONS, PACE_OPTIONS, LoadgenError, LoadgenOptions
from pipeline import config
from pipeline.logs import setup_logging
from pipeline.shell.bench.options import (
    BenchAnalyticsOptions,
    BenchDecodeOptions,
    BenchGatewayOptions,
    BenchGatingOptions,
    BenchInferenceOptions,
    BenchSoakOptions,
)
from pipeline.shell.options import (
    AssetOptions,
    BrokerOptions,
    SettingsOptions,
    UpOptions,
    WaitOptions,
)
from pipeline.shell.token import TokenOptions

log = logging.getLogger("vae")
OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True)
class Invocation:
    """What a handler gets: the services' settings and the command's own options."""

    settings: config.Settings
    chosen: dict[type, Any]

    def options(self, cls: type[OptionsT]) -> OptionsT:
        found: OptionsT = self.chosen[cls]
        return found


Handler = Callable[[Invocation], int]


@dataclass(frozen=True)
class Command:
    """One `vae` command: its name (``bench gateway`` for a nested one), help and options."""

    name: str
    help: str
    handler: Handler
    sections: tuple[str, ...] = ()
    options: tuple[tuple[type, tuple[str, ...] | None], ...] = ()  # (class, subset or all)


# --- handlers ----------------------------------------------------------------------------


def _broker(run: Invocation) -> int:
    from pipeline.kafka.admin import ensure_topics
    from pipeline.kafka.embedded import EmbeddedBroker
    from pipeline.topics import engine_topics

    settings = run.settings
    durable = run.options(BrokerOptions).durable
    broker = EmbeddedBroker(
        port=settings.broker.port,
        host=settings.broker.host,
        data_dir=Path(durable) if durable else None,
    ).start()
    kafka = config.KafkaSettings(bootstrap=broker.bootstrap)
    if settings.topics.create:
        counts = ensure_topics(kafka, engine_topics(settings.topics).all())
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


def _topics(run: Invocation) -> int:
    from pipeline.kafka.admin import ensure_topics, wait_for_broker
    from pipeline.topics import engine_topics

    settings = run.settings
    wait_for_broker(settings.kafka, timeout=run.options(WaitOptions).wait)
    for name, partitions in ensure_topics(
        settings.kafka, engine_topics(settings.topics).all()
    ).items():
        print(f"{name}: {partitions} partitions")
    return 0


def _gateway(run: Invocation) -> int:
    from pipeline.gateway.server import run_gateway
    from pipeline.kafka.admin import wait_for_broker

    wait_for_broker(run.settings.kafka, timeout=run.options(WaitOptions).wait)
    return run_gateway(run.settings)


def _worker(run: Invocation) -> int:
    from pipeline.kafka.admin import wait_for_broker
    from pipeline.worker.app import run_worker

    wait_for_broker(run.settings.kafka, timeout=run.options(WaitOptions).wait)
    return run_worker(run.settings)


def _analytics(run: Invocation) -> int:
    from pipeline.analytics.app import run_analytics
    from pipeline.kafka.admin import ensure_topics, wait_for_broker
    from pipeline.topics import engine_topics

    settings = run.settings
    wait_for_broker(settings.kafka, timeout=run.options(WaitOptions).wait)
    if settings.topics.create:
        ensure_topics(settings.kafka, engine_topics(settings.topics).all())
    return run_analytics(settings)


def _bench_analytics(run: Invocation) -> int:
    from pipeline.shell.bench.analytics import run_bench

    return run_bench(run.options(BenchAnalyticsOptions))


def _bench_soak(run: Invocation) -> int:
    from pipeline.shell.bench.soak import run as run_soak

    return run_soak(run.options(BenchSoakOptions))


def _client_token(auth: config.AuthSettings, scopes: tuple[str, ...]) -> None:
    """Make sure this client and its processes find a token (VAE_AUTH_TOKEN).

    --auth-token, VAE_AUTH_TOKEN or the token file, in that order; failing those, a client
    that holds the gateway's secret (Compose gives it to the replay) signs its own.
    """
    from client.credentials import TOKEN_ENV, find_token
    from pipeline.auth.tokens import issue

    token = find_token(auth.token)
    if not token and auth.enabled and auth.secret:
        token = issue(auth.secret, scopes, 86400, subject="vae-client")
    if token:
        os.environ[TOKEN_ENV] = token


def _replay(run: Invocation) -> int:
    from connectors.replay import run_replay

    _client_token(run.settings.auth, ("ingest:*",))
    return run_replay(run.options(ReplayOptions), run.settings.client.gateway_url)


def _cameras(run: Invocation) -> int:
    from connectors.cameras.runner import run_cameras

    return run_cameras(run.options(CamerasOptions), run.settings.client.gateway_url)


def _sink(run: Invocation, destination: Any) -> int:
    from connectors.sinks.base import run_sink
    from pipeline.kafka.admin import ensure_topics, wait_for_broker
    from pipeline.topics import engine_topics

    settings = run.settings
    wait_for_broker(settings.kafka, timeout=run.options(WaitOptions).wait)
    if settings.topics.create:
        ensure_topics(settings.kafka, engine_topics(settings.topics).all())
    return run_sink(settings, run.options(SinkOptions), destination)


def _sink_postgres(run: Invocation) -> int:
    from connectors.sinks.postgres import PostgresSink

    return _sink(run, PostgresSink(run.options(PostgresOptions)))


def _sink_mqtt(run: Invocation) -> int:
    from connectors.sinks.mqtt import MqttSink

    return _sink(run, MqttSink(run.options(MqttOptions)))


def _sink_webhook(run: Invocation) -> int:
    from connectors.sinks.webhook import WebhookSink

    return _sink(run, WebhookSink(run.options(WebhookOptions)))


def _loadgen(run: Invocation) -> int:
    from dataclasses import replace

    from loadgen.runner import run_loadgen

    _client_token(run.settings.auth, ("ingest:*", "subscribe:*", "metrics"))
    options = run.options(LoadgenOptions)
    options = replace(options, gateway=options.gateway or run.settings.client.gateway_url)
    try:
        _, code = run_loadgen(options)
    except LoadgenError as exc:
        print(f"vae loadgen: {exc}", file=sys.stderr)
        return exc.exit_code
    return code


def _up(run: Invocation) -> int:
    from pipeline.shell.up import run_up

    return run_up(run.settings, run.options(UpOptions))


def _download_with_bar(label: str, fetch: Callable[..., Path]) -> Path:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task(label, total=None)
        return fetch(progress=lambda done, total: bar.update(task, completed=done, total=total))


def _assets(
    action: str,
    names: Iterable[str],
    locate: Callable[[str], object],
    not_found: type[Exception],
    fetch: Callable[[str], Callable[..., Path]],
) -> int:
    """where / ensure / fetch over a catalogue, shared by `vae models` and `vae media`."""
    wanted = list(names)
    if action in ("where", "ensure"):
        missing = []
        for name in wanted:
            try:
                print(f"{name}: {locate(name)}")
            except not_found as exc:
                missing.append(name)
                if action == "where":
                    print(f"{name}: {exc}")
        if action == "where" or not missing:
            return 0
        wanted = missing
    for name in wanted:
        path = _download_with_bar(name, fetch(name))
        print(f"{name}: {path} (sha256 verified)")
    return 0


def _models(run: Invocation) -> int:
    from pipeline.inference.model_files import CATALOGUE, ModelNotFound, fetch, locate, sha256_of

    o = run.options(AssetOptions)

    def where(name: str) -> str:
        path = locate(name, run.settings.model.dir)
        return f"{path} (sha256 {sha256_of(path)[:16]}...)"

    return _assets(
        o.action,
        o.names or CATALOGUE,
        where,
        ModelNotFound,
        lambda name: partial(fetch, name, Path(o.dest or "models")),
    )


def _media(run: Invocation) -> int:
    from connectors import samples

    o = run.options(AssetOptions)
    return _assets(
        o.action,
        o.names or samples.SAMPLES,
        samples.locate,
        samples.SampleNotFound,
        lambda name: partial(samples.fetch, name, Path(o.dest or "media")),
    )


def _bench_inference(run: Invocation) -> int:
    from pipeline.shell.bench.inference import run as run_bench_inference

    return run_bench_inference(run.options(BenchInferenceOptions), run.settings)


def _bench_decode(run: Invocation) -> int:
    from pipeline.shell.bench.decode import run as run_bench_decode

    return run_bench_decode(run.options(BenchDecodeOptions))


def _bench_gating(run: Invocation) -> int:
    from pipeline.shell.bench.gating import run as run_bench_gating

    return run_bench_gating(run.options(BenchGatingOptions), run.settings)


def _bench_gateway(run: Invocation) -> int:
    from dataclasses import replace

    from pipeline.shell.bench.gateway import run_bench

    bench = run.options(BenchGatewayOptions)
    load = replace(
        run.options(LoadgenOptions),
        gateway="ws://127.0.0.1:0",  # each row starts its own gateway
        max_error_rate=1.0,  # a benchmark reports losses; it does not stop on them
    )
    return run_bench(
        run.settings,
        load,
        bench.stream_counts(),
        bench.ceiling_seconds,
        Path(bench.out),
        Path(bench.markdown) if bench.markdown else None,
        Path(bench.plot) if bench.plot else None,
        "vae bench gateway " + " ".join(sys.argv[3:]),
        bench.storage,
        bench.process_counts(),
    )


def _settings(run: Invocation) -> int:
    if run.options(SettingsOptions).markdown:
        print(markdown())
        return 0
    settings = run.settings
    for option in config.options():
        value = getattr(getattr(settings, option.section), option.name)
        shown = "***" if option.secret and value else repr(value)
        print(f"{option.env}={shown}")
    return 0


def _token_issue(run: Invocation) -> int:
    from pipeline.shell.token import issue_token

    print(issue_token(run.options(TokenOptions), run.settings.auth))
    return 0


# --- the command table -------------------------------------------------------------------

SERVICE = ("kafka", "topics", "schema_registry")

COMMANDS: tuple[Command, ...] = (
    Command(
        "up",
        "Run everything on this machine: broker (embedded unless VAE_KAFKA_BOOTSTRAP is set), "
        "gateway, workers and a replay of the sample clip; prints a summary every few seconds.",
        _up,
        config.SECTIONS,
        ((UpOptions, None),),
    ),
    Command(
        "gateway",
        "Run the WebSocket gateway (ingest, subscribe, health, metrics, web viewer).",
        _gateway,
        (*SERVICE, "gateway", "auth", "log"),
        ((WaitOptions, None),),
    ),
    Command(
        "worker",
        "Run an inference worker (a member of the workers' consumer group).",
        _worker,
        (*SERVICE, "worker", "model", "log"),
        ((WaitOptions, None),),
    ),
    Command(
        "analytics",
        "Run a stream-analytics worker (faust-streaming): tracks, line and zone events and "
        "windowed counts from the detections, per the rules file.",
        _analytics,
        (*SERVICE, "analytics", "log"),
        ((WaitOptions, None),),
    ),
    Command(
        "broker",
        "Run the embedded Kafka-compatible broker (Tansu; in memory, or durable with "
        "--durable DIR) and create the topics.",
        _broker,
        ("broker", "topics", "log"),
        ((BrokerOptions, None),),
    ),
    Command(
        "topics",
        "Create the engine's topics (if missing) and print their partitions.",
        _topics,
        ("kafka", "topics", "log"),
        ((WaitOptions, None),),
    ),
    Command(
        "replay",
        "Push a video file, photo or folder of photos to the gateway as N live streams.",
        _replay,
        ("client", "auth", "log"),
        ((ReplayOptions, None),),
    ),
    Command(
        "cameras",
        "Push real cameras (RTSP, HTTP MJPEG, video files looped, V4L2) from a cameras file "
        "to the gateway; per-camera health on /metrics and /v1/cameras, reloaded at runtime.",
        _cameras,
        ("client", "log"),
        ((CamerasOptions, None),),
    ),
    Command(
        "sink postgres",
        "Write the analytics' events and counts (and detections) into PostgreSQL: tables "
        "created and migrated, upserts by key, offsets committed after the COMMIT.",
        _sink_postgres,
        (*SERVICE, "log"),
        ((PostgresOptions, None), (SinkOptions, None), (WaitOptions, None)),
    ),
    Command(
        "sink mqtt",
        "Publish the analytics' events (<prefix>/events) and live counts (retained, "
        "<prefix>/<stream>/<rule>/<label>/...) to an MQTT broker, QoS 1.",
        _sink_mqtt,
        (*SERVICE, "log"),
        ((MqttOptions, None), (SinkOptions, None), (WaitOptions, None)),
    ),
    Command(
        "sink webhook",
        "POST each event and count as signed JSON (Idempotency-Key, X-VAE-Signature) to a "
        "URL; retried with backoff; refused ones go to the sinks' dead-letter topic.",
        _sink_webhook,
        (*SERVICE, "log"),
        ((WebhookOptions, None), (SinkOptions, None), (WaitOptions, None)),
    ),
    Command(
        "loadgen",
        "Simulate many cameras against a gateway; measure gateway, ack and end-to-end "
        "latency and count every frame (exit 1 past --max-error-rate, 2 if unreachable).",
        _loadgen,
        ("client", "auth", "log"),
        ((LoadgenOptions, None),),
    ),
    Command(
        "models",
        "Find or download model weights.",
        _models,
        ("model", "log"),
        ((AssetOptions, None),),
    ),
    Command(
        "media",
        "Find or download the sample media.",
        _media,
        ("log",),
        ((AssetOptions, None),),
    ),
    Command(
        "bench inference",
        "Images/s and latency per backend, precision and batch size: raw model, JPEG to "
        "detections, and through the embedded broker.",
        _bench_inference,
        ("worker", "model", "log"),
        ((BenchInferenceOptions, None),),
    ),
    Command(
        "bench decode",
        "CPU per frame of JPEG decode + letterbox at 768x576, 1080p and 4K: a full decode "
        "against the reduced DCT-scale decode (VAE_MODEL_DECODE_MARGIN).",
        _bench_decode,
        ("log",),
        ((BenchDecodeOptions, None),),
    ),
    Command(
        "bench gating",
        "Motion gating on clips of the sample footage at 0%, 50%, 90% still frames: model "
        "runs, worker CPU and frames/s per frame, recall against every-frame inference.",
        _bench_gating,
        ("worker", "model", "log"),
        ((BenchGatingOptions, None),),
    ),
    Command(
        "bench gateway",
        "loadgen at 1,000 / 2,500 / 5,000 / 10,000 streams against a fresh embedded broker "
        "and gateway per row, and a bare producer's ceiling; gateway settings from VAE_GATEWAY_*.",
        _bench_gateway,
        ("log",),
        ((BenchGatewayOptions, None), (LoadgenOptions, (*PACE_OPTIONS, *FRAME_OPTIONS))),
    ),
    Command(
        "bench analytics",
        "One analytics worker fed a detections topic as N streams x F fps would fill it: "
        "records/s, records per CPU-second, consumer lag, against the pure analytics.",
        _bench_analytics,
        ("log",),
        ((BenchAnalyticsOptions, None),),
    ),
    Command(
        "bench soak",
        "The engine (embedded broker, gateway, one worker, analytics) under loadgen for a "
        "long run: every process's memory and the consumer lag sampled, plotted, and a "
        "verdict on growth after warm-up (make soak: 30 min at 500 streams x 1 fps).",
        _bench_soak,
        ("log",),
        ((BenchSoakOptions, None),),
    ),
    Command(
        "token issue",
        "Print a signed token (HS256, VAE_AUTH_SECRET or the secret `vae up` saved) with the "
        "given scopes, e.g. --scope ingest:cam-* --scope subscribe:* --ttl 24h.",
        _token_issue,
        ("auth", "log"),
        ((TokenOptions, None),),
    ),
    Command(
        "settings",
        "Print the effective settings (or the README's tables).",
        _settings,
        (),
        ((SettingsOptions, None),),
    ),
)

GROUP_HELP = {
    "bench": "Benchmarks (see docs/benchmarks.md).",
    "token": "Tokens for the gateway (README, Security).",
    "sink": "Sinks: events and counts out to PostgreSQL, MQTT, webhooks (README, Sinks).",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vae",
        description="Distributed real-time video analytics: WebSocket gateway -> Kafka -> "
        "batched detection workers -> live WebSocket feed.",
    )
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for command in COMMANDS:
        group, _, leaf = command.name.rpartition(" ")
        sub = top
        if group:
            if group not in groups:
                holder = top.add_parser(group, help=GROUP_HELP.get(group, ""))
                groups[group] = holder.add_subparsers(
                    dest=f"{group}_command", required=True, metavar=group.upper()
                )
            sub = groups[group]
        p = sub.add_parser(leaf, help=command.help, description=command.help)
        for cls, only in command.options:
            config.add_command_options(p, cls, only)
        config.add_arguments(p, command.sections)
        p.set_defaults(command_entry=command)
    return parser


def markdown() -> str:
    """`vae settings --markdown`: the services' settings, then every command's options."""
    tables: dict[str, list[str]] = {}  # a table -> the commands that take exactly those options
    for command in COMMANDS:
        infos = [o for cls, only in command.options for o in config.command_options(cls, only)]
        if infos:
            tables.setdefault(config.options_table(infos), []).append(f"`vae {command.name}`")
    parts = ["### Services", "", config.markdown_table()]
    for table, names in tables.items():
        parts += ["", f"### {', '.join(names)}", "", table]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command = args.command_entry
    try:
        settings = config.load(args)
        chosen: dict[type, Any] = {
            cls: config.load_options(cls, args, only=only) for cls, only in command.options
        }
    except config.SettingsError as exc:
        parser.error(str(exc))
    except LoadgenError as exc:  # loadgen's own checks of its options
        print(f"vae {command.name}: {exc}", file=sys.stderr)
        return exc.exit_code
    setup_logging(settings.log.level, command.name.replace(" ", "-"))
    try:
        return command.handler(Invocation(settings, chosen))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every known failure surfaces as one clear line, not a traceback
        from pipeline.shell.errors import user_facing

        message = user_facing(exc)
        if message is None:
            raise
        print(f"vae {command.name}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
