"""Every option of every service and command, declared once.

Each setting is a dataclass field with its help text. The same declaration gives the
environment variable (``VAE_<SECTION>_<NAME>`` unless overridden), the CLI flag, the README
table (``vae settings --markdown``) and the parsing rules, so they can never disagree.
Precedence: CLI flag > environment > default.

Two kinds of section use the one mechanism:

- the services' settings, grouped in ``Settings`` (kafka, gateway, worker, ...): flags are
  ``--<section>-<name>``, and any command can take any section;
- a command's own options (``vae up``, ``vae loadgen``, the benchmarks, ...): a frozen
  dataclass with a ``SECTION`` class variable, declared beside the code that uses it; flags
  are ``--<name>`` (or a positional argument), environment ``VAE_<SECTION>_<NAME>``.

``to_env`` turns either kind back into the environment of a child process.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def setting(
    default: T,
    help: str,
    *,
    env: str | None = None,
    flag: str | None = None,
    choices: Sequence[str] | None = None,
    secret: bool = False,
    positional: bool = False,
    required: bool = False,
) -> T:
    """Declare one setting: a default, a help text and optional parsing rules.

    ``positional`` (command options only) makes it an argument instead of a flag;
    ``required`` makes an empty value an error naming the flag and the variable.
    """
    metadata: dict[str, object] = {
        "help": help,
        "env": env,
        "flag": flag,
        "choices": tuple(choices) if choices else None,
        "secret": secret,
        "positional": positional,
        "required": required,
    }
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class KafkaSettings:
    """How every client reaches the brokers (Apache Kafka, Redpanda, Amazon MSK, embedded)."""

    bootstrap: str = setting(
        "",
        "Bootstrap servers, host:port[,host:port]. Empty: `vae up` starts the embedded "
        "broker; the other commands use 127.0.0.1:9092 (where `vae broker` listens).",
    )
    security_protocol: str = setting(
        "PLAINTEXT",
        "librdkafka security.protocol. MSK with IAM auth: SASL_SSL.",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    )
    sasl_mechanism: str = setting(
        "",
        "SASL mechanism. AWS_MSK_IAM signs OAUTHBEARER tokens with the pod's IAM role "
        "(needs the `msk` extra).",
        choices=("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"),
    )
    sasl_username: str = setting("", "SASL username (PLAIN/SCRAM).")
    sasl_password: str = setting("", "SASL password (PLAIN/SCRAM).", secret=True)
    ssl_ca_location: str = setting("", "CA bundle for TLS; empty uses the system store.")
    aws_region: str = setting("", "AWS region for MSK IAM tokens; empty reads AWS_REGION.")
    client_config: str = setting(
        "",
        "Extra librdkafka properties for every client, as key=value pairs separated by commas.",
    )


@dataclass(frozen=True)
class BrokerSettings:
    """The embedded broker that `vae broker` and `vae up` run when no Kafka is configured."""

    host: str = setting("127.0.0.1", "Interface the embedded broker listens on.")
    port: int = setting(
        9092,
        "Port of the embedded broker. `vae up` fails at once, naming this setting, when the "
        "port is taken (use VAE_KAFKA_BOOTSTRAP to join a broker already there).",
    )


@dataclass(frozen=True)
class TopicSettings:
    """Topic names and how they are created (explicitly at start, never auto-created)."""

    frames: str = setting("vae.frames", "Topic of encoded frames, keyed by stream_id.")
    detections: str = setting("vae.detections", "Topic of detections, keyed by stream_id.")
    tracks: str = setting(
        "vae.tracks", "Topic of tracked detections (vae analytics), keyed by stream_id."
    )
    events: str = setting(
        "vae.events", "Topic of line and zone events (vae analytics), keyed by stream_id."
    )
    counts: str = setting(
        "vae.counts", "Topic of windowed counts (vae analytics), keyed by stream_id."
    )
    rules: str = setting(
        "vae.rules",
        "Compacted topic of the analytics rules saved through the gateway (WS /v1/rules).",
    )
    dead_letters: str = setting(
        "vae.frames.dlq",
        "Dead-letter topic: frame records a worker can never process, with the reason.",
    )
    sink_dead_letters: str = setting(
        "vae.sinks.dlq",
        "Dead-letter topic of the sinks: events a webhook kept refusing, records a sink could "
        "not read, with the reason.",
    )
    frames_partitions: int = setting(
        12, "Partitions of the frames topic: the most workers that can share the load."
    )
    detections_partitions: int = setting(12, "Partitions of the detections topic.")
    replication_factor: int = setting(1, "Replication factor of created topics (3 on MSK).")
    frames_retention_ms: int = setting(
        3_600_000, "retention.ms of the frames topic: frames are only useful for minutes."
    )
    detections_retention_ms: int = setting(
        86_400_000, "retention.ms of the detections and tracks topics."
    )
    events_retention_ms: int = setting(604_800_000, "retention.ms of the events and counts topics.")
    dead_letters_retention_ms: int = setting(
        604_800_000, "retention.ms of the dead-letter topic: kept a week for a person to look."
    )
    max_message_bytes: int = setting(
        4_194_304, "max.message.bytes of the frames topic (must exceed the largest frame)."
    )
    create: bool = setting(True, "Create missing topics at start with the partition counts above.")


@dataclass(frozen=True)
class SchemaRegistrySettings:
    """Where Avro schema ids come from."""

    url: str = setting(
        "",
        "Confluent-compatible schema registry (Redpanda has one built in). Empty: schema ids "
        "are derived from the local schemas/*.avsc files.",
    )
    basic_auth: str = setting("", "user:password for the schema registry.", secret=True)


@dataclass(frozen=True)
class GatewaySettings:
    """The WebSocket/HTTP front door: ingest, subscribe, health, metrics, web viewer."""

    host: str = setting("0.0.0.0", "Interface to listen on.")
    port: int = setting(8080, "Port for WebSocket and HTTP (one port).")
    processes: int = setting(
        1,
        "Gateway processes sharing the port (SO_REUSEPORT; the kernel spreads connections "
        "over them): a parent starts them, restarts one that exits and stops them with it. "
        "One per core; each serves every endpoint (README: Gateway processes).",
    )
    max_frame_bytes: int = setting(
        2_097_152, "Largest accepted frame; a larger one is rejected with `frame_too_large`."
    )
    subscriber_queue: int = setting(
        256,
        "Messages buffered per subscriber; when full the oldest are dropped (and counted), "
        "so a slow subscriber never slows the others.",
    )
    backpressure_timeout_ms: int = setting(
        2000,
        "When the producer's local queue is full, how long an ingest socket waits for room "
        "(its reads pause, so TCP pushes back on the camera) before the frame is rejected "
        "with `overloaded`.",
    )
    linger_ms: float = setting(2.0, "Producer linger.ms: batching delay traded for latency.")
    gc_young_threshold: int = setting(
        50_000,
        "Python's young-generation GC threshold (gc.set_threshold). Python's 700 makes a "
        "gateway holding thousands of sockets spend seconds a minute in full collections "
        "(see docs/benchmarks.md); 0 keeps Python's default.",
    )
    producer_queue_kbytes: int = setting(
        131_072, "Producer local queue bound (queue.buffering.max.kbytes)."
    )
    latest_frames: int = setting(
        10_000, "Streams whose latest frame is kept for the viewer (least recently updated go)."
    )
    web_root: str = setting(
        "", "Folder served at /; empty serves the bundled viewer (pipeline/gateway/web)."
    )
    frame_history: int = setting(
        32,
        "Recent frames kept per stream that a subscriber names, so the viewer draws boxes on "
        "the frame they were found in (GET /v1/streams/{id}/frames/{frame_id}.jpg); 0 = off.",
    )
    frame_history_mbytes: int = setting(
        64, "Memory bound of all those recent frames together (MiB); the oldest go first."
    )
    tls_cert: str = setting(
        "",
        "PEM certificate (chain) file: with VAE_GATEWAY_TLS_KEY the port serves https:// and "
        "wss:// instead of http:// and ws://. Empty: plain (terminate TLS in front).",
    )
    tls_key: str = setting("", "PEM private key file of VAE_GATEWAY_TLS_CERT.")
    max_connections: int = setting(
        50_000, "Open connections in all; past it a request gets 503; 0 = none."
    )
    max_connections_per_client: int = setting(
        12_000,
        "Open connections from one client address; past it a request gets 503; 0 = none. "
        "Above `vae loadgen`'s 10,000 streams from one machine; lower it where cameras do not "
        "share an address (`vae bench gateway` turns it off).",
    )
    handshake_timeout_s: float = setting(
        10.0, "Seconds a client has to send its request (a trickling one is dropped)."
    )
    max_header_line_bytes: int = setting(
        8192, "Longest request line or header line; a longer one gets 431."
    )
    max_headers: int = setting(64, "Most request headers; more get 431.")
    max_fps_per_stream: float = setting(
        60.0,
        "Frames per second one stream may send (a token bucket holding one second's worth); "
        "a frame over it is refused with `rate_limited`; 0 = none.",
    )
    max_subscribers_per_token: int = setting(
        64, "Subscribe sockets open at once with one token; past it the handshake gets 429."
    )
    allowed_origins: tuple[str, ...] = setting(
        (),
        "Origins (scheme://host[:port]) whose pages may open WebSockets here, besides the "
        "gateway's own; `*` allows any. A browser handshake from another origin gets 403.",
    )
    events_index: int = setting(
        100_000,
        "Recent events the gateway finds by id for their snapshot and clip (an LRU: a lookup "
        "or a newer record of an id refreshes it, the least recently used goes first, and "
        "its media then get 404). About 0.4 kB each. Filled at start from what the events "
        "topic still holds.",
    )
    media_concurrency: int = setting(
        2,
        "Snapshots and clips made at once, each on a thread of its own; a request over it "
        "gets 503 with Retry-After at once (none waits).",
    )
    media_timeout_s: float = setting(
        8.0,
        "Longest a snapshot or clip may take (reading vae.frames, encoding); past it 503. "
        "Must stay under VAE_GATEWAY_HANDSHAKE_TIMEOUT_S, which bounds every HTTP answer.",
    )
    clip_before_s: float = setting(
        5.0, "Seconds of the stream before an event's start in its clip."
    )
    clip_after_s: float = setting(5.0, "Seconds of the stream after an event's end in its clip.")
    clip_max_s: float = setting(
        30.0,
        "Longest clip, in capture time: a longer one is cut to this span around its best frame.",
    )
    clip_max_frames: int = setting(
        300, "Most frames in one clip (it ends there): with the timeout, bounds a clip's work."
    )
    clip_max_width: int = setting(
        1280,
        "Clips of wider frames are scaled down to this width (encoding time grows with the "
        "pixels); 0 keeps every frame's size.",
    )
    clip_cache_mb: int = setting(
        64,
        "Megabytes of clips made last kept by event id (LRU), so the byte ranges a browser "
        "asks of one clip come from the same bytes and only its first request encodes it.",
    )


@dataclass(frozen=True)
class AuthSettings:
    """Who may send, watch or read what (README, Security): signed tokens with scopes."""

    enabled: bool = setting(
        True,
        "Require a token on every data endpoint. `off` lets anyone who reaches the port "
        "send and watch everything (a warning is logged at start).",
        env="VAE_AUTH",
        flag="--auth",
    )
    secret: str = setting(
        "",
        "HS256 secret that signs and verifies tokens (`vae token issue`); `vae up` makes "
        "one when none is set.",
        secret=True,
    )
    public_key: str = setting(
        "",
        "PEM public key (the text, or a path to it) of an identity provider whose "
        "RS*/ES*/PS*/EdDSA tokens are accepted.",
    )
    jwks_url: str = setting(
        "",
        "JWKS URL of an identity provider (Keycloak, Cognito, any OIDC issuer): its keys "
        "verify tokens; fetched at start and every 10 minutes.",
    )
    audience: str = setting("", "Required `aud` claim of tokens; empty: not checked.")
    issuer: str = setting("", "Required `iss` claim of tokens; empty: not checked.")
    token: str = setting(
        "",
        "The token vae's clients (replay, loadgen, client/) send; empty: the token file "
        "`vae up` writes ($XDG_CONFIG_HOME/vae/token, else ~/.config/vae/token).",
        secret=True,
    )


@dataclass(frozen=True)
class WorkerSettings:
    """Inference workers: a consumer group over the frames topic."""

    group_id: str = setting("vae-workers", "Consumer group of the workers.")
    max_batch: int = setting(8, "Largest inference batch.")
    max_wait_ms: float = setting(
        10.0, "How long a batch waits for more frames after its first one arrived."
    )
    max_frame_age_ms: int = setting(
        0,
        "Skip (and count) frames older than this at the worker: real-time load shedding. "
        "0 = off, every frame is processed.",
    )
    unknown_schema_wait_ms: int = setting(
        60_000,
        "How long a frame record whose schema id cannot be resolved (registry down, writer "
        "newer than this worker) holds its partition, retried with backoff, before it goes "
        "to the dead-letter topic.",
    )
    decode_threads: int = setting(2, "Threads decoding JPEG and letterboxing (GIL released).")
    pipeline_depth: int = setting(
        2, "Batches queued between stages (decode -> infer -> publish); bounds memory."
    )
    max_unacked: int = setting(
        1024,
        "Frames whose detections were produced but not yet acknowledged by the broker, on top "
        "of those in the stages, before the consumer pauses; too low caps throughput at about "
        "this many frames per broker round trip.",
    )
    gate: bool = setting(
        True,
        "Motion gating: a frame of a stream in which nothing moved since the frame last "
        "inferred skips the model, and its detections carry that frame's objects (with "
        "`inferred` false). Off: every frame is inferred.",
    )
    keyframe_s: float = setting(
        2.0,
        "With gating, a stream's frame is inferred at least this often (seconds of the "
        "stream's capture time) whatever the motion, so objects that stand still stay fresh.",
    )
    gate_width: int = setting(
        160,
        "Gating's thumbnail: the JPEG decoded in grey at the smallest DCT scale (1/2, 1/4, "
        "1/8) at least this many pixels wide, averaged over 2x2 cells.",
    )
    gate_threshold: float = setting(
        20.0, "Grey levels (of 255) a thumbnail cell must differ from the reference to change."
    )
    gate_min_area: float = setting(
        0.002, "Share of the thumbnail's cells that must change for a frame to have moved."
    )
    gate_alpha: float = setting(
        0.05,
        "Weight of a gated frame in the running average that is the reference (the frame "
        "last inferred, blended with the still frames since), averaging sensor noise out.",
    )
    nice: int = setting(
        0,
        "Added to the worker's niceness at start (os.nice): a lower CPU priority, so that on "
        "a box it shares with a gateway, ingest keeps the CPU it needs and the backlog waits "
        "in the frames topic. `vae up` sets it with --workers-nice.",
    )
    idle_priority: bool = setting(
        False,
        "Run the worker under Linux's SCHED_IDLE policy (its threads get the CPU only when "
        "nothing else of normal priority wants it; stronger than any niceness): on a box "
        "shared with the gateway and the broker, detection falls behind instead of ingest. "
        "`vae up` sets it (--workers-idle).",
    )
    fetch_max_bytes: int = setting(
        2_097_152,
        "Most bytes of frames one fetch from the broker brings (fetch.max.bytes; a larger "
        "frame still comes whole). Small fetches keep a worker that lags far behind from "
        "tying up the broker that takes ingest (docs/benchmarks.md); raise it with the "
        "queue below for a GPU worker that drains thousands of frames a second.",
    )
    fetch_queue_kbytes: int = setting(
        8192,
        "Most KB of frames prefetched and waiting in the worker (queued.max.messages.kbytes).",
    )
    metrics_port: int = setting(9101, "Port of the worker's /metrics, /healthz, /readyz; 0 = off.")
    max_poll_interval_ms: int = setting(
        10_000,
        "Consumer max.poll.interval.ms. Also the group's rebalance timeout: the embedded "
        "broker completes a join only after it, so keep it low (6-10 s) locally.",
    )
    session_timeout_ms: int = setting(
        10_000, "Consumer session.timeout.ms: how soon a dead worker's partitions move."
    )


@dataclass(frozen=True)
class ModelSettings:
    """Which detector runs, and how."""

    dir: str = setting(
        "",
        "Folder holding the model files. Empty searches ./models, then ../shared/models.",
        env="VAE_MODEL_DIR",
    )
    name: str = setting("yolox_nano", "Model name (file <name>.onnx).")
    backend: str = setting(
        "auto",
        "Inference backend; auto picks the fastest that imports and finds a device.",
        env="VAE_BACKEND",
        choices=("auto", "onnxruntime", "tensorrt", "torch"),
    )
    precision: str = setting(
        "auto",
        "Inference precision; auto is fp16 on a GPU and fp32 on the CPU (where fp16 runs, "
        "but slower).",
        choices=("auto", "fp32", "fp16"),
    )
    threads: int = setting(
        0, "Intra-op threads of the CPU backend; 0 = the cores this process may use."
    )
    conf_threshold: float = setting(0.3, "Minimum score (objectness x class) of a detection.")
    nms_iou: float = setting(0.45, "IoU above which a box of the same class is suppressed.")
    engine_cache_dir: str = setting(
        "",
        "Where built TensorRT engines are cached (keyed by model sha256, TensorRT version, "
        "GPU, precision, batch). Empty: $XDG_CACHE_HOME/vae/engines or ~/.cache/vae/engines.",
    )
    cuda_graphs: bool = setting(
        True, "torch on CUDA: capture each batch bucket as a CUDA graph (off: eager, slower)."
    )
    cpu_resize: str = setting(
        "pillow",
        "Letterbox resize on the CPU: pillow reproduces MODELS.md's reference detections bit "
        "for bit; torch runs the same antialiased filter in about a third of the CPU time, "
        "within one grey level (needs the torch extra).",
        choices=("pillow", "torch"),
    )
    decode_margin: float = setting(
        2.0,
        "CPU preprocessing: decode each JPEG at the smallest DCT scale (1/2, 1/4, 1/8) still "
        "at least this many times its letterbox size (a 1080p frame into 416 pixels: 1/2 at "
        "2, 1/4 at 1), for a fraction of a full decode and resize. A frame under twice that "
        "size (the sample media, at any margin of 1 or more) decodes in full either way; 0 "
        "always decodes in full (boxes then match MODELS.md's reference bit for bit).",
    )
    gpu_preprocess: bool = setting(
        True,
        "torch on CUDA: decode JPEG with nvJPEG (torchvision) and letterbox on the GPU; "
        "off, or without torchvision, frames are decoded and letterboxed on the CPU.",
    )


@dataclass(frozen=True)
class AnalyticsSettings:
    """Stream analytics (`vae analytics`): tracks, line and zone events, windowed counts."""

    rules: str = setting(
        "",
        "YAML rules file (lines and zones per stream glob; README: Analytics). Empty: no "
        "rules, tracks only.",
        flag="--rules",
    )
    window_s: float = setting(60.0, "Tumbling window of the counts, seconds of event time.")
    grace_s: float = setting(
        10.0,
        "How late (event time) a record may be and still update its closed window; later "
        "ones are dropped and counted.",
    )
    group_id: str = setting(
        "vae-analytics", "Consumer group (and faust app id) of the analytics workers."
    )
    session_timeout_s: float = setting(
        6.0, "Group session timeout: how soon a dead worker's streams move to another."
    )
    fetch_wait_ms: int = setting(
        50,
        "Longest a fetch of detections waits at the broker for new records. faust fixes "
        "1500 ms, with which the embedded broker handed detections over in bursts (tracks "
        "and events 0.4 s late at the median, up to 0.75 s); lower is fresher, at the cost "
        "of more fetches while idle.",
    )


@dataclass(frozen=True)
class ClientSettings:
    """What the tools (replay, loadgen, up) connect to."""

    gateway_url: str = setting(
        "ws://127.0.0.1:8080", "Gateway base URL for replay and loadgen.", env="VAE_GATEWAY_URL"
    )


def gateway_option() -> str:
    """The ``gateway`` option of a command that sends to the gateway (replay, cameras,
    loadgen): each command's own variable; empty means VAE_GATEWAY_URL."""
    return setting("", "Gateway URL (default VAE_GATEWAY_URL).")


# The options every command that sends streams shares (replay, loadgen, `vae up`, the soak),
# each with the command's own default.


def fps_option(default: float) -> float:
    return setting(default, "Frames per second per stream.")


def prefix_option(default: str) -> str:
    return setting(default, "Stream ids are PREFIX-0, PREFIX-1, ...")


def quality_option(default: int) -> int:
    return setting(default, "JPEG quality (1-100).")


@dataclass(frozen=True)
class LogSettings:
    """Logging."""

    level: str = setting("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class Settings:
    """All sections. Services read only the sections they need."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    schema_registry: SchemaRegistrySettings = field(default_factory=SchemaRegistrySettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    client: ClientSettings = field(default_factory=ClientSettings)
    log: LogSettings = field(default_factory=LogSettings)


SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))


@dataclass(frozen=True)
class OptionInfo:
    """One setting as a user sees it."""

    section: str
    name: str
    env: str
    flag: str  # "--gateway-port", "--streams", or the metavar of a positional ("SOURCE")
    kind: Any  # str, int, float, bool or tuple[str, ...]
    default: Any
    help: str
    choices: tuple[str, ...] | None
    secret: bool
    positional: bool = False
    required: bool = False

    @property
    def dest(self) -> str:
        """The attribute argparse stores it under (unique across sections)."""
        return f"{self.section}__{self.name}"


def _section_class(section: str) -> type:
    hints = get_type_hints(Settings)
    return hints[section]  # type: ignore[no-any-return]


def _infos(cls: type, section: str, prefixed: bool) -> list[OptionInfo]:
    hints = get_type_hints(cls)
    result = []
    for f in dataclasses.fields(cls):
        positional = bool(f.metadata.get("positional"))
        env = f.metadata.get("env") or f"VAE_{section}_{f.name}".upper()
        if positional:
            flag = f.name.upper()
        else:
            flag = f.metadata.get("flag") or "--" + (
                f"{section}-{f.name}" if prefixed else f.name
            ).replace("_", "-")
        default = f.default
        result.append(
            OptionInfo(
                section=section,
                name=f.name,
                env=env,
                flag=flag,
                kind=hints[f.name],
                default=default,
                help=f.metadata["help"],
                choices=f.metadata.get("choices"),
                secret=bool(f.metadata.get("secret")),
                positional=positional,
                required=bool(f.metadata.get("required")),
            )
        )
    return result


def options(sections: Iterable[str] = SECTIONS) -> list[OptionInfo]:
    """Every service setting of the given sections, in declaration order."""
    result = []
    for section in sections:
        result += _infos(_section_class(section), section, prefixed=True)
    return result


def command_options(cls: type, only: Iterable[str] | None = None) -> list[OptionInfo]:
    """A command's own options (a dataclass with a SECTION), optionally a subset by name."""
    infos = _infos(cls, section_of(cls), prefixed=False)
    if only is None:
        return infos
    wanted = set(only)
    return [o for o in infos if o.name in wanted]


def section_of(cls: type) -> str:
    section = getattr(cls, "SECTION", None)
    if not isinstance(section, str):
        raise TypeError(f"{cls.__name__} declares command options without a SECTION")
    return section


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(option: OptionInfo, raw: str, origin: str) -> Any:
    """Convert a string from the environment or a flag, with an error naming its origin."""
    value: Any
    try:
        if option.kind is bool:
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError("expected true/false")
            value = low in _TRUE
        elif option.kind is int:
            value = int(raw.replace("_", ""))
        elif option.kind is float:
            value = float(raw)
        elif option.kind == tuple[str, ...]:
            value = tuple(part.strip() for part in raw.split(",") if part.strip())
        else:
            value = raw
    except ValueError as exc:
        raise SettingsError(f"{origin}={raw!r}: expected {option.kind.__name__} ({exc})") from None
    if option.choices is not None and value not in option.choices and value != ():
        allowed = ", ".join(repr(c) for c in option.choices)
        raise SettingsError(f"{origin}={raw!r}: must be one of {allowed}")
    if option.kind in (int, float) and value < 0:
        raise SettingsError(f"{origin}={raw!r}: must not be negative")
    return value


def _add(group: Any, option: OptionInfo) -> None:
    meta = f"(env {option.env}; default {option.default!r})"
    text = f"{option.help} {meta}".replace("%", "%%")
    if option.positional:
        many = option.kind == tuple[str, ...]
        group.add_argument(
            option.dest,
            nargs="*" if many else "?",
            default=None,
            metavar=option.flag,
            help=text,
        )
    elif option.kind is bool:
        group.add_argument(
            option.flag,
            dest=option.dest,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=text,
        )
    elif option.kind == tuple[str, ...]:  # --x a,b or --x a --x b
        group.add_argument(
            option.flag, dest=option.dest, action="append", default=None, metavar="LIST", help=text
        )
    else:
        name = option.kind.__name__.upper()
        group.add_argument(option.flag, dest=option.dest, default=None, metavar=name, help=text)


def add_arguments(parser: argparse.ArgumentParser, sections: Iterable[str] = SECTIONS) -> None:
    """Add a flag for every setting of the given sections (defaults stay None: unset)."""
    for section in sections:
        group = parser.add_argument_group(f"{section} settings")
        for option in options([section]):
            _add(group, option)


def add_command_options(
    parser: argparse.ArgumentParser, cls: type, only: Iterable[str] | None = None
) -> None:
    """Add a command's own options (or the subset ``only``) to its parser."""
    for option in command_options(cls, only):
        _add(parser, option)


def load(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from defaults, then the environment, then parsed CLI flags."""
    environ = os.environ if environ is None else environ
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for option in options():
        _read(option, args, environ, values[option.section])
    sections = {name: _section_class(name)(**values[name]) for name in SECTIONS}
    settings = Settings(**sections)
    validate(settings)
    return settings


def _read(
    option: OptionInfo,
    args: argparse.Namespace | None,
    environ: Mapping[str, str],
    into: dict[str, Any],
) -> None:
    """The option's value from the environment, then the flag (when either gives one)."""
    if option.env in environ:
        into[option.name] = _parse(option, environ[option.env], option.env)
    raw = getattr(args, option.dest, None) if args is not None else None
    if isinstance(raw, bool):
        into[option.name] = raw
    elif isinstance(raw, list) and not option.positional:
        if raw:  # a repeated flag: every value, each may be a comma-separated list
            into[option.name] = _parse(option, ",".join(str(r) for r in raw), option.flag)
    elif isinstance(raw, list):
        if raw:
            into[option.name] = tuple(str(r) for r in raw)
    elif raw is not None:
        into[option.name] = _parse(option, str(raw), option.flag)
    if option.required and not into.get(option.name, option.default):
        how = option.flag if option.positional else f"{option.flag} (or {option.env})"
        raise SettingsError(f"{how} is required: {option.help}")


C = TypeVar("C")


def load_options(
    cls: type[C],
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> C:
    """A command's options from defaults, the environment, then its flags.

    With ``only``, the options outside it keep their defaults (another command borrows a
    subset of them and the environment of this command must not leak into it).
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in command_options(cls, only):
        _read(option, args, environ, values)
    instance = cls(**values)
    check = getattr(instance, "validate", None)
    if callable(check):
        check()
    return instance


def validate(settings: Settings) -> None:
    """Cross-field checks that a single value's parse cannot see."""
    if settings.worker.max_batch < 1:
        raise SettingsError("VAE_WORKER_MAX_BATCH must be at least 1")
    if settings.topics.frames_partitions < 1 or settings.topics.detections_partitions < 1:
        raise SettingsError("topic partition counts must be at least 1")
    if settings.gateway.max_frame_bytes > settings.topics.max_message_bytes - 1024:
        raise SettingsError(
            "VAE_GATEWAY_MAX_FRAME_BYTES must stay below VAE_TOPICS_MAX_MESSAGE_BYTES "
            "(minus 1 KiB for the record's other fields)"
        )
    if settings.worker.max_poll_interval_ms < settings.worker.session_timeout_ms:
        raise SettingsError(
            "VAE_WORKER_MAX_POLL_INTERVAL_MS must be at least VAE_WORKER_SESSION_TIMEOUT_MS "
            f"({settings.worker.max_poll_interval_ms} < {settings.worker.session_timeout_ms})"
        )
    if not 0.0 <= settings.worker.gate_alpha <= 1.0:
        raise SettingsError("VAE_WORKER_GATE_ALPHA must be between 0 and 1")
    if settings.gateway.processes < 1:
        raise SettingsError("VAE_GATEWAY_PROCESSES must be at least 1")
    if settings.gateway.processes > 1 and settings.gateway.port == 0:
        raise SettingsError(
            "VAE_GATEWAY_PROCESSES above 1 needs a fixed VAE_GATEWAY_PORT (0 would give each "
            "process a port of its own)"
        )
    if bool(settings.gateway.tls_cert) != bool(settings.gateway.tls_key):
        raise SettingsError(
            "VAE_GATEWAY_TLS_CERT and VAE_GATEWAY_TLS_KEY go together: set both, or neither"
        )
    gw = settings.gateway
    if gw.handshake_timeout_s and gw.media_timeout_s >= gw.handshake_timeout_s:
        raise SettingsError(
            "VAE_GATEWAY_MEDIA_TIMEOUT_S must stay under VAE_GATEWAY_HANDSHAKE_TIMEOUT_S "
            f"({gw.media_timeout_s} >= {gw.handshake_timeout_s}): an HTTP answer must be "
            "sent before the handshake's time runs out"
        )
    if gw.media_concurrency < 1 or gw.clip_max_frames < 1 or gw.clip_max_s <= 0:
        raise SettingsError(
            "VAE_GATEWAY_MEDIA_CONCURRENCY and VAE_GATEWAY_CLIP_MAX_FRAMES must be at least 1, "
            "VAE_GATEWAY_CLIP_MAX_S above 0"
        )
    if settings.topics.frames == settings.topics.detections:
        raise SettingsError("VAE_TOPICS_FRAMES and VAE_TOPICS_DETECTIONS must differ")


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def to_env(*parts: Any) -> dict[str, str]:
    """The environment that reproduces these settings (a Settings, or a command's options)
    in a child process: the one way settings travel to children."""
    env = {}
    for part in parts:
        if isinstance(part, Settings):
            for option in options():
                env[option.env] = _env_value(getattr(getattr(part, option.section), option.name))
        else:
            for option in command_options(type(part)):
                env[option.env] = _env_value(getattr(part, option.name))
    return env


def markdown_table(sections: Iterable[str] = SECTIONS) -> str:
    """The README's table of the services' settings."""
    return options_table(options(sections))


def options_table(infos: Iterable[OptionInfo]) -> str:
    """A Markdown table of options: variable, flag, default, meaning."""
    lines = ["| Environment variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for option in infos:
        shown = _env_value(option.default)
        default = "(empty)" if shown == "" else f"`{shown}`"
        text = option.help.replace("|", "\\|")
        if option.choices:
            text += (
                " One of: " + ", ".join(f"`{c}`" if c else "(empty)" for c in option.choices) + "."
            )
        lines.append(f"| `{option.env}` | `{option.flag}` | {default} | {text} |")
    return "\n".join(lines)
