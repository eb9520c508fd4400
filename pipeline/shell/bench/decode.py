"""`vae bench decode`: what decoding JPEG only as large as the letterbox needs saves.

For each frame size (the sample clip's frames resized, JPEG quality 90) and each
VAE_MODEL_DECODE_MARGIN, the CPU preparer decodes and letterboxes the frames into the
model's input on this thread only, three passes; reported: CPU-ms per frame (the best
pass: the least disturbed by whatever else runs) and the ratio against a full decode
(margin 0) measured in the same run. The accuracy side is a test
(tests/unit/test_reduced_decode.py).
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

from PIL import Image
from rich.console import Console

from pipeline.config import SettingsError
from pipeline.inference.preprocess.batch import CpuPreparer
from pipeline.inference.preprocess.cpu import dct_scale_for
from pipeline.shell.bench.options import BenchDecodeOptions
from pipeline.shell.bench.results import replace_section

console = Console(stderr=True)

SECTION_START = "<!-- bench:decode:start -->"
SECTION_END = "<!-- bench:decode:end -->"
INPUT = (416, 416)  # YOLOX-Nano's
PASSES = 3


def parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SettingsError("--sizes takes WxH, e.g. 1920x1080,3840x2160") from None
    if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
        raise SettingsError("--sizes takes WxH, e.g. 1920x1080,3840x2160")
    return [(s[0], s[1]) for s in sizes]


def cpu_ms_per_frame(preparer: CpuPreparer, jpegs: list[bytes]) -> float:
    best = float("inf")
    for _ in range(PASSES):
        start = time.thread_time()
        for data in jpegs:
            preparer.prepare([data])
        best = min(best, (time.thread_time() - start) * 1e3 / len(jpegs))
    return best


def run(options: BenchDecodeOptions) -> int:
    """Entry point of `vae bench decode`."""
    from connectors import samples
    from connectors.sources.video import VideoSource
    from pipeline.shell.bench.inference import machine_facts

    sizes = parse_sizes(options.sizes)
    try:
        margins = [float(m) for m in options.margins.split(",") if m.strip()]
    except ValueError:
        raise SettingsError("--margins takes numbers, e.g. 0,2,1") from None
    if 0.0 not in margins:
        margins = [0.0, *margins]  # the baseline
    clip = VideoSource(samples.locate(samples.DEFAULT_CLIP), quality=90).load()
    step = max(1, len(clip) // max(1, options.frames))
    images = [Image.open(io.BytesIO(f.jpeg)).convert("RGB") for f in clip[::step][: options.frames]]
    rows = []
    for width, height in sizes:
        jpegs = []
        for image in images:
            out = io.BytesIO()
            image.resize((width, height), Image.Resampling.BICUBIC).save(out, "JPEG", quality=90)
            jpegs.append(out.getvalue())
        kb = sum(map(len, jpegs)) / len(jpegs) / 1024
        full = 0.0
        for margin in margins:
            ms = cpu_ms_per_frame(CpuPreparer(INPUT, decode_margin=margin), jpegs)
            full = ms if margin == 0 else full
            k = dct_scale_for(height, width, INPUT, margin)
            row = {
                "size": f"{width}x{height}",
                "kbytes": round(kb, 1),
                "margin": margin,
                "scale": f"1/{k}",
                "cpu_ms": ms,
                "vs_full": full / ms if ms else 0.0,
            }
            rows.append(row)
            console.print(
                f"{row['size']} margin {margin:g}: decoded at {row['scale']}, "
                f"{ms:.2f} CPU-ms/frame ({row['vs_full']:.2f}x less than full)"
            )
    command = "vae " + " ".join(sys.argv[1:])
    facts = machine_facts()
    if options.json:
        Path(options.json).parent.mkdir(parents=True, exist_ok=True)
        report = {"machine": facts, "command": command, "rows": rows}
        Path(options.json).write_text(json.dumps(report, indent=2) + "\n")
    if options.markdown:
        lines = [
            SECTION_START,
            "",
            f"{facts['date']}, {facts['cpu']} ({facts['cores']} cores), `{command}`; "
            f"{len(images)} frames of the sample clip per size, JPEG quality 90, into {INPUT[1]}x"
            f"{INPUT[0]}, one thread, best of {PASSES} passes.",
            "",
            "| frame | KB | margin | decoded at | CPU-ms/frame (decode + letterbox) "
            "| less than full |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r['size']} | {r['kbytes']} | {r['margin']:g} | {r['scale']} | "
                f"{r['cpu_ms']:.2f} | {r['vs_full']:.2f}x |"
                for r in rows
            ),
            "",
            SECTION_END,
        ]
        doc = Path(options.markdown)
        text = doc.read_text() if doc.exists() else ""
        doc.write_text(replace_section(text, "\n".join(lines), SECTION_START, SECTION_END))
    return 0
