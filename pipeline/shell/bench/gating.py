"""`vae bench gating`: what motion gating saves on mostly static scenes, and what it loses.

Each clip is built from real footage: the sample clip's moving people, spliced with a real
still (the last moving frame, re-sent with fresh sensor noise and JPEG re-encoding each
frame, as a camera sends an unchanged scene), so that ``static share`` of every period of
frames is still. Each clip runs twice through the worker's compute path in this process
(thumbnail + gate, then decode, letterbox, model and NMS for the frames that go to the
model, in batches): with gating off (every-frame inference: the baseline and the recall
reference) and on. Reported per clip: model runs per frame, CPU-ms per frame, frames/s
one worker sustains (frames over wall time, the model's threads as configured), and recall:
the share of every-frame inference's objects that the gated run's records hold (same class,
IoU >= 0.5), and of its line crossings and zone entries (both runs through the analytics
core with the same line and zone: `gating_events.py`). No Kafka: this is the worker's
compute, which is what gating changes.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import simplejpeg
from rich.console import Console

from pipeline.analytics.events import Event
from pipeline.config import Settings, SettingsError
from pipeline.inference.backends import create_backend
from pipeline.inference.detections import Detections
from pipeline.inference.detector import Detector
from pipeline.runtime import process_cpu_seconds
from pipeline.shell.bench.gating_events import (
    DEFAULT_RULES,
    Tally,
    bench_rules,
    match_events,
    replay,
)
from pipeline.shell.bench.options import BenchGatingOptions
from pipeline.shell.bench.results import replace_section
from pipeline.worker.gating import LastInferred, MotionGate, MotionParams, thumbnail

console = Console(stderr=True)

SECTION_START = "<!-- bench:gating:start -->"
SECTION_END = "<!-- bench:gating:end -->"
FPS = 10.0  # the sample clip's rate: capture times (and so keyframes) follow it
MATCH_IOU = 0.5


def build_clip(
    moving: list[npt.NDArray[np.uint8]],
    frames: int,
    static_share: float,
    period: int,
    noise: float,
    seed: int = 0,
) -> tuple[list[bytes], list[bool]]:
    """``frames`` JPEGs: in every ``period``, first the clip's next moving frames, then the
    last of them held still (fresh noise, re-encoded) for ``static_share`` of the period.
    Returns the JPEGs and which of them are still. A still frame's noise is a window at a
    random offset of a field drawn once (four frames' worth), so each frame's differs
    without drawing millions of normal samples per frame."""
    rng = np.random.default_rng(seed)
    still_len = round(period * static_share)
    size = moving[0].size
    field = rng.normal(0.0, noise, 4 * size).astype(np.float32) if noise > 0 else None
    out: list[bytes] = []
    still: list[bool] = []
    cursor = 0
    last = moving[0]
    while len(out) < frames:
        for _ in range(min(period - still_len, frames - len(out))):
            last = moving[cursor % len(moving)]
            cursor += 1
            out.append(simplejpeg.encode_jpeg(np.ascontiguousarray(last), quality=90))
            still.append(False)
        for _ in range(min(still_len, frames - len(out))):
            frame = last
            if field is not None:
                start = int(rng.integers(0, field.size - size))
                grain = field[start : start + size].reshape(last.shape)
                frame = np.clip(last.astype(np.float32) + grain, 0, 255).astype(np.uint8)
            out.append(simplejpeg.encode_jpeg(np.ascontiguousarray(frame), quality=90))
            still.append(True)
    return out[:frames], still[:frames]


def clip_frames(moving: int, static_share: float, period: int) -> int:
    """Frames of a clip that holds ``moving`` frames of footage once, each period's still
    stretch after its moving ones (the clip ends on its last moving frame)."""
    per_period = period - round(period * static_share)
    if per_period < 1:
        raise SettingsError(
            f"a period of {period} frames at {static_share:.1%} still holds no moving frame"
        )
    full = (moving - 1) // per_period  # periods before the last, which has no still stretch
    return full * period + moving - full * per_period


def _iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def recall(reference: list[Detections], got: list[Detections], iou: float = MATCH_IOU) -> float:
    """Share of the reference's objects that ``got`` holds in the same frame (same class,
    IoU >= ``iou``, each of got's boxes matched once); 1.0 when the reference is empty."""
    total = matched = 0
    for ref, mine in zip(reference, got, strict=True):
        used: set[int] = set()
        for box, cls in zip(ref.xyxy, ref.class_id, strict=True):
            total += 1
            best, best_iou = -1, iou
            for j in range(len(mine)):
                if j in used or mine.class_id[j] != cls:
                    continue
                overlap = _iou(box, mine.xyxy[j])
                if overlap >= best_iou:
                    best, best_iou = j, overlap
            if best >= 0:
                used.add(best)
                matched += 1
    return matched / total if total else 1.0


@dataclass
class Run:
    """One clip through the worker's compute path, gated or not."""

    frames: int
    model_runs: int
    cpu_s: float
    wall_s: float
    detections: list[Detections]
    inferred: list[bool]  # per frame: went to the model (else it carries the last objects)

    @property
    def runs_per_frame(self) -> float:
        return self.model_runs / self.frames

    @property
    def cpu_ms_per_frame(self) -> float:
        return self.cpu_s * 1e3 / self.frames

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s


def process(detector: Detector, gate: MotionGate, jpegs: list[bytes], batch: int) -> Run:
    """The worker's per-batch work on one stream: gate each frame in order, run the model
    on the ones that moved, give the gated ones the last inferred objects."""
    last: LastInferred[Detections] = LastInferred()
    out: list[Detections] = []
    flags: list[bool] = []
    runs = 0
    cpu0, wall0 = process_cpu_seconds(), time.perf_counter()
    for start in range(0, len(jpegs), batch):
        chunk = jpegs[start : start + batch]
        decisions = []
        for offset, data in enumerate(chunk):
            grey = thumbnail(data, gate.params.width) if gate.enabled else None
            decisions.append(gate.decide("clip", 0, grey, (start + offset) / FPS).infer)
        inferred = [data for data, infer in zip(chunk, decisions, strict=True) if infer]
        found = iter(detector.detect(inferred)) if inferred else iter(())
        runs += len(inferred)
        for infer in decisions:
            if infer:
                detections = next(found) or Detections.empty()
                last.put("clip", 0, detections)
            else:
                detections = last.get("clip", Detections.empty())
            out.append(detections)
        flags += decisions
    cpu, wall = process_cpu_seconds() - cpu0, time.perf_counter() - wall0
    return Run(len(jpegs), runs, cpu, wall, out, flags)


@dataclass(frozen=True)
class Side:
    """One run of a clip as its row reports it (every frame inferred, or gated): what it cost
    and the events the analytics made of it."""

    runs_per_frame: float
    cpu_ms: float
    fps: float
    crossings_in: int
    crossings_out: int
    entries: int

    @classmethod
    def of(cls, run: Run, events: list[Event]) -> Side:
        tally = Tally.of(events)
        return cls(run.runs_per_frame, run.cpu_ms_per_frame, run.fps,
                   tally.crossings_in, tally.crossings_out, tally.entries)  # fmt: skip

    @property
    def events(self) -> int:
        return self.crossings_in + self.crossings_out + self.entries


@dataclass
class Row:
    static_share: float
    frames: int
    every: Side
    gated: Side
    recall: float
    objects: int
    events_matched: int
    events_extra: int
    event_recall: float
    missed_events: list[dict[str, Any]]  # every-frame inference's, unmatched (frame, still?)
    extra_events: list[dict[str, Any]]  # the gated run's, unmatched

    @property
    def fewer_runs(self) -> float:
        return self.every.runs_per_frame / max(self.gated.runs_per_frame, 1e-9)

    @property
    def less_cpu(self) -> float:
        return self.every.cpu_ms / max(self.gated.cpu_ms, 1e-9)


def static_shares(text: str) -> list[float]:
    try:
        shares = [float(s) / 100.0 for s in text.split(",") if s.strip()]
    except ValueError:
        raise SettingsError("--shares takes percentages, e.g. 0,50,90") from None
    if not shares or any(not 0 <= s < 1 for s in shares):
        raise SettingsError("--shares: each static share must be at least 0 and under 100")
    return shares


def markdown(
    rows: list[Row], facts: dict[str, Any], command: str, params: MotionParams, events: str
) -> str:
    lines = [
        SECTION_START,
        "",
        f"{facts.get('date', '')}, {facts.get('cpu', '')} ({facts.get('cores', '')} cores), "
        f"`{command}`; gating: threshold {params.threshold:g}, min area {params.min_area:g}, "
        f"keyframe every {params.keyframe_s:g} s, thumbnail >= {params.width} px wide; "
        f"events: {events}.",
        "",
        "| static share | frames | model runs/frame (every → gated) | fewer runs | "
        "worker CPU-ms/frame (every → gated) | less CPU | frames/s one worker (every → gated) "
        "| recall | objects | line crossings in/out (every → gated) | zone entries "
        "(every → gated) | event recall | extra events |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e, g = r.every, r.gated
        lines.append(
            f"| {r.static_share:.0%} | {r.frames} | {e.runs_per_frame:.2f} → "
            f"{g.runs_per_frame:.3f} | {r.fewer_runs:.1f}x | {e.cpu_ms:.1f} → {g.cpu_ms:.1f} | "
            f"{r.less_cpu:.1f}x | {e.fps:.1f} → {g.fps:.1f} | {r.recall:.4f} | {r.objects} | "
            f"{e.crossings_in}/{e.crossings_out} → {g.crossings_in}/{g.crossings_out} | "
            f"{e.entries} → {g.entries} | {r.event_recall:.4f} ({r.events_matched}/{e.events}) "
            f"| {r.events_extra} |"
        )
    lines += ["", SECTION_END]
    return "\n".join(lines)


def _listed(
    events: list[Event], indices: tuple[int, ...], still: list[bool]
) -> list[dict[str, Any]]:
    """Events as the JSON lists them: what, and at which frame of the clip (still or not)."""
    out = []
    for i in indices:
        e = events[i]
        frame = round(e.event_ts_us * FPS / 1e6)
        out.append({"rule": e.rule, "kind": e.kind, "direction": e.direction, "label": e.label,
                    "frame": frame, "still": still[frame]})  # fmt: skip
    return out


def make_row(
    share: float,
    every: Run,
    gated: Run,
    events: tuple[list[Event], list[Event]],
    tolerance_s: float,
    still: list[bool],
) -> Row:
    """A clip's row from its two runs and the events the analytics made of each (every-frame
    inference's, then the gated run's); ``still`` says which of the clip's frames are."""
    matched = match_events(events[0], events[1], tolerance_s)
    return Row(
        static_share=share,
        frames=every.frames,
        every=Side.of(every, events[0]),
        gated=Side.of(gated, events[1]),
        recall=recall(every.detections, gated.detections),
        objects=sum(len(d) for d in every.detections),
        events_matched=matched.matched,
        events_extra=matched.extra,
        event_recall=matched.recall,
        missed_events=_listed(events[0], matched.missed, still),
        extra_events=_listed(events[1], matched.extras, still),
    )


def run(options: BenchGatingOptions, settings: Settings) -> int:
    """Entry point of `vae bench gating`."""
    from connectors import samples
    from connectors.sources.video import VideoSource
    from pipeline.shell.bench.inference import machine_facts

    shares = static_shares(options.shares)
    rules = bench_rules(options.rules)
    source = options.media or str(samples.locate(samples.DEFAULT_CLIP))
    moving = [
        simplejpeg.decode_jpeg(f.jpeg, colorspace="RGB")
        for f in VideoSource(source, quality=90).load()
    ]
    height, width = moving[0].shape[:2]
    frames = {
        share: options.frames or clip_frames(len(moving), share, options.period) for share in shares
    }
    params = MotionParams.of(settings.worker)
    detector = Detector(
        create_backend(settings.model, options.batch),
        conf_threshold=settings.model.conf_threshold,
        iou_threshold=settings.model.nms_iou,
    )
    warm = [simplejpeg.encode_jpeg(np.ascontiguousarray(f)) for f in moving[: 2 * options.batch]]
    process(detector, MotionGate(params, enabled=False), warm, options.batch)  # warm up
    a = settings.analytics

    def events(r: Run) -> list[Event]:
        return replay(r.detections, r.inferred, rules, width=width, height=height, fps=FPS,
                      window_s=a.window_s, grace_s=a.grace_s)  # fmt: skip

    rows = []
    for share in shares:
        jpegs, still = build_clip(moving, frames[share], share, options.period, options.noise)
        every = process(detector, MotionGate(params, enabled=False), jpegs, options.batch)
        gated = process(detector, MotionGate(params), jpegs, options.batch)
        del jpegs
        found = (events(every), events(gated))
        row = make_row(share, every, gated, found, options.event_tolerance_s, still)
        rows.append(row)
        e, g = row.every, row.gated
        console.print(
            f"static {share:.0%}, {row.frames} frames: model runs/frame {g.runs_per_frame:.3f} "
            f"({row.fewer_runs:.1f}x fewer), CPU-ms/frame {e.cpu_ms:.1f} -> {g.cpu_ms:.1f} "
            f"({row.less_cpu:.1f}x), frames/s {e.fps:.1f} -> {g.fps:.1f}, recall "
            f"{row.recall:.4f} of {row.objects} objects; crossings in/out "
            f"{e.crossings_in}/{e.crossings_out} -> {g.crossings_in}/{g.crossings_out}, "
            f"entries {e.entries} -> {g.entries}, event recall {row.event_recall:.4f} "
            f"({row.events_matched}/{e.events}), {row.events_extra} extra"
        )
    command = "vae " + " ".join(sys.argv[1:])
    facts = {**machine_facts(), "date": time.strftime("%Y-%m-%d", time.gmtime())}
    described = (
        f"the rules of {options.rules}" if options.rules else
        "a line and a zone where the sample clip's people walk "
        "(`gating_events.DEFAULT_RULES`)"
    )  # fmt: skip
    described += f", matched within {options.event_tolerance_s:g} s"
    report = {
        "machine": facts,
        "command": command,
        "gating": asdict(params),
        "rules": Path(options.rules).read_text() if options.rules else DEFAULT_RULES,
        "event_tolerance_s": options.event_tolerance_s,
        "rows": [{**asdict(r), "fewer_runs": r.fewer_runs, "less_cpu": r.less_cpu} for r in rows],
    }
    if options.json:
        Path(options.json).parent.mkdir(parents=True, exist_ok=True)
        Path(options.json).write_text(json.dumps(report, indent=2) + "\n")
    if options.markdown:
        doc = Path(options.markdown)
        text = doc.read_text() if doc.exists() else ""
        section = markdown(rows, facts, command, params, described)
        doc.write_text(replace_section(text, section, SECTION_START, SECTION_END))
    return 0
