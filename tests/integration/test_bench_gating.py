"""`vae bench gating` end to end at toy scale: both runs of each clip, their objects and their
line crossings and zone entries, into the JSON and the markdown section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_gating_at_toy_scale(tmp_path: Path, media: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Motion gating\n\nHand-written notes stay.\n")
    result = subprocess.run(
        [
            sys.executable, "-m", "pipeline", "bench", "gating", "--shares", "0,80",
            "--frames", "100", "--period", "20", "--model-threads", "1",
            "--media", str(media / "vtest.avi"),
            "--json", str(tmp_path / "gating.json"), "--markdown", str(doc),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gating.json").read_text())
    assert "walkway" in report["rules"] and report["event_tolerance_s"] == 1.0
    moving, still = report["rows"]
    assert moving["frames"] == still["frames"] == 100
    # Every frame moves: every frame is inferred, so both runs' records, and so their
    # events, are the same.
    assert moving["gated"]["runs_per_frame"] == 1.0 and moving["recall"] == 1.0

    def events(side: dict[str, int]) -> tuple[int, int, int]:
        return side["crossings_in"], side["crossings_out"], side["entries"]

    every, gated = events(moving["every"]), events(moving["gated"])
    assert every == gated and sum(every) > 0, moving  # the line and zone see the walkers
    assert moving["events_matched"] == sum(every) and moving["events_extra"] == 0
    assert moving["event_recall"] == 1.0
    assert still["gated"]["runs_per_frame"] < 0.5
    assert still["every"]["runs_per_frame"] == 1.0
    total = sum(events(still["every"]))
    assert 0 <= still["events_matched"] <= total
    assert still["event_recall"] == (still["events_matched"] / total if total else 1.0)
    assert len(still["missed_events"]) == total - still["events_matched"]
    assert len(still["extra_events"]) == still["events_extra"]
    assert moving["missed_events"] == moving["extra_events"] == []
    text = doc.read_text()
    assert "Hand-written notes stay." in text and "| event recall | extra events |" in text
    assert f"| 1.0000 ({sum(every)}/{sum(every)}) | 0 |" in text
