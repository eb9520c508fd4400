"""The options of `vae bench inference` and `vae bench gateway`, declared once (flags,
VAE_BENCH_* variables, README rows); kept apart so `vae --help` imports no model code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.config import fps_option, setting

BACKEND_LABELS = ("tensorrt", "torch-cuda", "onnxruntime-cuda", "onnxruntime-cpu", "torch-cpu")
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)


def json_option(default: str) -> str:
    """``--json`` of a benchmark: its whole report."""
    return setting(default, "Where every figure goes.")


@dataclass(frozen=True)
class BenchInferenceOptions:
    """`vae bench inference`: throughput per backend, precision and batch size."""

    SECTION: ClassVar[str] = "bench_inference"

    backends: str = setting(
        "all", f"Comma-separated, of {', '.join(BACKEND_LABELS)}; 'all' tries each."
    )
    precisions: str = setting("fp32,fp16", "Precisions to run, comma-separated.")
    batches: str = setting(",".join(map(str, DEFAULT_BATCHES)), "Batch sizes to run.")
    levels: str = setting("model,detect,pipeline", "Any of model, detect, pipeline.")
    seconds: float = setting(3.0, "Measuring time per point, model and detect.")
    pipeline_seconds: float = setting(
        8.0, "Frames per pipeline point: this many seconds' worth at the raw model's rate."
    )
    media: str = setting("", "Clip to take frames from (default: the sample clip).")
    json: str = json_option("artifacts/bench/inference.json")
    markdown: str = setting("", "Rewrite the Inference section of this file.")
    plot: str = setting("", "Write the throughput plot (PNG) here.")
    from_json: str = setting(
        "",
        "Measure nothing: render --markdown and --plot from a saved run's JSON (e.g. one "
        "taken on a GPU machine).",
    )


@dataclass(frozen=True)
class BenchGatewayOptions:
    """`vae bench gateway`: loadgen rows against a fresh broker and gateway each."""

    SECTION: ClassVar[str] = "bench_gateway"

    streams: str = setting("1000,2500,5000,10000", "Rows: stream counts, comma-separated.")
    storage: str = setting(
        "memory",
        "The embedded broker's storage engine for every row and the ceiling: memory keeps "
        "every frame in RAM (and slows as it grows); null acknowledges produce requests and "
        "keeps nothing, so the rows measure the gateway rather than the broker.",
        choices=("memory", "null"),
    )
    gateway_processes: str = setting(
        "1",
        "Gateway processes (VAE_GATEWAY_PROCESSES) of the rows, comma-separated: every "
        "stream count runs with each (1,2: a row with one process, then one with two).",
    )
    ceiling_seconds: float = setting(15.0, "Seconds of the bare-producer run.")
    out: str = setting("artifacts/bench-gateway", "Per-row JSON reports and plots.")
    markdown: str = setting("", "Rewrite the gateway section of this file.")
    plot: str = setting("", "Write the summary plot here.")

    def stream_counts(self) -> list[int]:
        from pipeline.config import SettingsError

        try:
            return [int(n) for n in self.streams.split(",") if n.strip()]
        except ValueError:
            raise SettingsError("--streams takes numbers, e.g. 1000,5000") from None

    def process_counts(self) -> list[int]:
        from pipeline.config import SettingsError

        try:
            counts = [int(n) for n in self.gateway_processes.split(",") if n.strip()]
        except ValueError:
            counts = []
        if not counts or min(counts) < 1:
            raise SettingsError("--gateway-processes takes counts of 1 or more, e.g. 1,2")
        return counts


@dataclass(frozen=True)
class BenchGatingOptions:
    """`vae bench gating`: motion gating on clips with 0-90% still frames; gating's own
    settings are the worker section's (VAE_WORKER_GATE_*, VAE_WORKER_KEYFRAME_S)."""

    SECTION: ClassVar[str] = "bench_gating"

    shares: str = setting("0,50,90", "Static shares of the clips, percent, comma-separated.")
    frames: int = setting(
        0,
        "Frames per clip, at the sample clip's 10 fps; 0: as many as hold the moving footage "
        "once (the sample clip's 795 frames: 795 at 0% still, 7,905 at 90%), so every clip "
        "has the same people to count.",
    )
    period: int = setting(100, "Frames per moving-then-still cycle of a clip.")
    noise: float = setting(3.0, "Sensor noise of the still frames (grey levels, std dev).")
    batch: int = setting(8, "Frames per batch, as the worker's VAE_WORKER_MAX_BATCH.")
    media: str = setting("", "Clip of moving footage (default: the sample clip).")
    rules: str = setting(
        "",
        "Rules file (YAML, as VAE_ANALYTICS_RULES) whose lines and zones for stream "
        "bench-gating are counted; default: a line and a zone where the sample clip's people "
        "walk.",
    )
    event_tolerance_s: float = setting(
        1.0, "Event times of a gated run's crossing or entry and its match at most this apart."
    )
    json: str = json_option("artifacts/bench/gating.json")
    markdown: str = setting("", "Rewrite the gating section of this file.")


@dataclass(frozen=True)
class BenchDecodeOptions:
    """`vae bench decode`: CPU per frame of decode + letterbox, full against reduced."""

    SECTION: ClassVar[str] = "bench_decode"

    sizes: str = setting(
        "768x576,1920x1080,3840x2160",
        "Frame sizes, WxH, comma-separated: the sample clip's frames resized to each.",
    )
    margins: str = setting(
        "0,2,1", "VAE_MODEL_DECODE_MARGIN values to compare (0: full decode, the baseline)."
    )
    frames: int = setting(40, "Frames per point (each decoded and letterboxed 3 times).")
    json: str = json_option("artifacts/bench/decode.json")
    markdown: str = setting("", "Rewrite the reduced-decode section of this file.")


@dataclass(frozen=True)
class BenchAnalyticsOptions:
    """`vae bench analytics`: one analytics worker fed detections as N streams x F fps."""

    SECTION: ClassVar[str] = "bench_analytics"

    streams: int = setting(5000, "Streams in the detections topic.")
    fps: float = setting(1.0, "Detections records per second per stream.")
    duration: float = setting(30.0, "Seconds of paced feed.")
    objects: int = setting(3, "Objects per record (moving boxes, half of them crossing).")
    out: str = setting("artifacts/bench-analytics", "JSON report and lag plot go here.")


@dataclass(frozen=True)
class BenchSoakOptions:
    """`vae bench soak`: the engine under a steady load for a long time; every process's
    resident memory and the consumer groups' lag sampled, and a verdict on growth."""

    SECTION: ClassVar[str] = "bench_soak"

    streams: int = setting(500, "Streams, one loadgen socket each.")
    fps: float = fps_option(1.0)
    duration: float = setting(1800.0, "Seconds of load (the fit runs over its second half).")
    sample_s: float = setting(5.0, "Seconds between samples of memory and lag.")
    source: str = setting(
        "",
        "What loadgen sends (default: the sample photo: one still scene, so motion gating "
        "infers only each stream's keyframes and one CPU worker keeps up).",
    )
    width: int = setting(
        128,
        "Frame width (loadgen resizes; 128: about 5 KB): the embedded broker keeps every "
        "frame, so small frames keep a long run in RAM.",
    )
    keyframe_s: float = setting(
        60.0, "The worker's VAE_WORKER_KEYFRAME_S: a still stream is inferred this often."
    )
    max_frame_age_ms: int = setting(
        10_000,
        "The worker's VAE_WORKER_MAX_FRAME_AGE_MS: frames it reaches later than this are "
        "shed and counted (the verdict says so), so a worker that falls behind does not "
        "queue without bound; 0 = off.",
    )
    durable: bool = setting(
        False,
        "The embedded broker on its durable storage (records on disk under OUT/broker-data, "
        "SeaweedFS's memory sampled with it) rather than in memory.",
    )
    max_growth: float = setting(
        1.0,
        "MB per minute a service (gateway, worker, analytics) may gain in resident memory "
        "over the second half of the load (and 10 MB over it) before the run fails (the "
        "broker keeps every record by design: reported, not judged).",
    )
    out: str = setting(
        "artifacts/soak", "Folder of the run: soak.json, soak.png, loadgen's report, logs."
    )
    from_json: str = setting(
        "", "Run nothing: render --markdown, --plot and --json from a saved run's soak.json."
    )
    markdown: str = setting("", "Rewrite the soak section of this file (docs/reliability.md).")
    section: str = setting(
        "soak",
        "Which section --markdown rewrites: the one between the HTML comments SECTION:start "
        "and SECTION:end (so one file can keep several runs).",
    )
    plot: str = setting("", "Also write the plot here (e.g. docs/img/soak.png).")
    json: str = setting("", "Also write the run's JSON here (e.g. docs/bench/soak.json).")
