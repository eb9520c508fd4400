"""Event recall of motion gating against the line and zone margin (`margin` in the rules).

Runs what `vae bench gating` runs on one clip (default: 90 % static), every-frame inference
and gated, once; then replays both runs' records through the analytics with the bench's
rules at each margin, and prints the crossings and entries each run makes, the recall of
every-frame inference's events and the gated run's extra ones. The detections are kept in
a pickle (--cache), so a second call with other margins takes seconds.
`python scripts/gating_margin_sweep.py --margins 0,0.005,0.01` (about 10 min on 2 cores the
first time); docs/benchmarks.md (Motion gating) has what it found.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import simplejpeg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors import samples
from connectors.sources.video import VideoSource
from pipeline.config import load
from pipeline.inference.backends.factory import create_backend
from pipeline.inference.detector import Detector
from pipeline.shell.bench.gating import FPS, build_clip, clip_frames, process
from pipeline.shell.bench.gating_events import Tally, bench_rules, match_events, replay
from pipeline.shell.bench.options import BenchGatingOptions
from pipeline.worker.gating import MotionGate, MotionParams


def detections(share: float, cache: Path) -> tuple[dict[str, Any], int, int]:
    """Both runs' detections and inferred flags, from the cache when it has this share."""
    if cache.exists():
        kept = pickle.loads(cache.read_bytes())
        if kept["share"] == share:
            return kept, kept["width"], kept["height"]
    settings = load(environ={"VAE_MODEL_THREADS": "1"})
    moving = [
        simplejpeg.decode_jpeg(f.jpeg, colorspace="RGB")
        for f in VideoSource(str(samples.locate(samples.DEFAULT_CLIP)), quality=90).load()
    ]
    height, width = moving[0].shape[:2]
    params = MotionParams.of(settings.worker)
    detector = Detector(
        create_backend(settings.model, BenchGatingOptions().batch),
        conf_threshold=settings.model.conf_threshold,
        iou_threshold=settings.model.nms_iou,
    )
    o = BenchGatingOptions()  # the benchmark's own clip and batch
    frames = clip_frames(len(moving), share, o.period)
    jpegs, _ = build_clip(moving, frames, share, o.period, o.noise)
    warm = [simplejpeg.encode_jpeg(np.ascontiguousarray(f)) for f in moving[: 2 * o.batch]]
    process(detector, MotionGate(params, enabled=False), warm, o.batch)
    every = process(detector, MotionGate(params, enabled=False), jpegs, o.batch)
    gated = process(detector, MotionGate(params), jpegs, o.batch)
    kept = {
        "share": share,
        "width": width,
        "height": height,
        "every": (every.detections, every.inferred),
        "gated": (gated.detections, gated.inferred),
    }
    cache.write_bytes(pickle.dumps(kept))
    return kept, width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.9, help="static share of the clip")
    parser.add_argument("--margins", default="0,0.0025,0.005,0.0075,0.01,0.015")
    parser.add_argument("--cache", default="artifacts/gating-margin-sweep.pkl")
    parser.add_argument("--tolerance-s", type=float, default=1.0)
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    kept, width, height = detections(args.share, cache)
    base = bench_rules("")
    a = load(environ={}).analytics
    print(f"static {args.share:.0%}: margin, events every -> gated, recall, extra")
    for margin in (float(m) for m in args.margins.split(",")):
        rules = replace(
            base,
            lines=tuple(replace(line, margin=margin) for line in base.lines),
            zones=tuple(replace(zone, margin=margin) for zone in base.zones),
        )
        found = []
        for run in ("every", "gated"):
            found_detections, inferred = kept[run]
            found.append(
                replay(
                    found_detections,
                    inferred,
                    rules,
                    width=width,
                    height=height,
                    fps=FPS,
                    window_s=a.window_s,
                    grace_s=a.grace_s,
                )
            )
        matched = match_events(found[0], found[1], args.tolerance_s)
        every, gated = Tally.of(found[0]), Tally.of(found[1])
        print(
            f"margin {margin:<7g} crossings in/out {every.crossings_in}/{every.crossings_out} -> "
            f"{gated.crossings_in}/{gated.crossings_out}, entries {every.entries} -> "
            f"{gated.entries}: recall {matched.recall:.4f} ({matched.matched}/{len(found[0])}), "
            f"{matched.extra} extra",
            flush=True,
        )


if __name__ == "__main__":
    main()
