"""`vae bench inference` end to end on tiny sizes: every level runs and its figures add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_runs_all_three_levels_and_writes_its_outputs(tmp_path: Path, media: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Inference\n\nHand-written notes stay.\n")
    result = subprocess.run(
        [
            sys.executable, "-m", "pipeline", "bench", "inference",
            "--backends", "onnxruntime-cpu", "--precisions", "fp32", "--batches", "1,2",
            "--seconds", "0.3", "--pipeline-seconds", "0.5", "--media", str(media / "vtest.avi"),
            "--json", str(tmp_path / "out" / "inference.json"),
            "--markdown", str(doc), "--plot", str(tmp_path / "img" / "throughput.png"),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads((tmp_path / "out" / "inference.json").read_text())
    levels = {(p["level"], p["batch"]) for p in figures["points"]}
    assert levels == {(lvl, b) for lvl in ("model", "detect", "pipeline") for b in (1, 2)}
    for p in figures["points"]:
        assert p["backend"] == "onnxruntime-cpu" and p["images_per_s"] > 0, p
    pipeline = [p for p in figures["points"] if p["level"] == "pipeline"]
    assert all(p["frames"] >= 8 * p["batch"] for p in pipeline)  # every frame came back
    assert all(p["cpu_ms_per_frame"] > 0 and p["broker_cpu_ms_per_frame"] > 0 for p in pipeline)
    text = doc.read_text()
    assert "Hand-written notes stay." in text and "(b) pipeline / raw" in text
    assert "### Where the CPU goes" in text
    assert (tmp_path / "img" / "throughput.png").stat().st_size > 5_000
    assert "../img/throughput.png" not in text and "img/throughput.png" in text
    # A saved run (say, from a GPU machine) renders the same section without measuring.
    again = tmp_path / "again.md"
    again.write_text("# Benchmarks\n\n## Inference\n\nHand-written notes stay.\n")
    rendered = subprocess.run(
        [
            sys.executable, "-m", "pipeline", "bench", "inference",
            "--from-json", str(tmp_path / "out" / "inference.json"),
            "--markdown", str(again), "--plot", str(tmp_path / "img" / "throughput.png"),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert again.read_text() == text
