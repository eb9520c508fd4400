"""The layers hold: import-linter's contracts pass on the tree and fail on a forbidden import.

Each case copies the packages to a temporary folder, adds one import that breaks one
contract, and runs `lint-imports` there: the contract named must come out BROKEN. So a
later change that imports across a layer fails `make lint` (and CI), not only review.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "connectors", "client", "loadgen", "schemas")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "web", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO / package, dest / package, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("file", "line", "contract"),
    [
        (
            "pipeline/gateway/fanout.py",
            "import loadgen.options",
            "The engine imports none of the tools built on it",
        ),
        ("pipeline/serde/wire.py", "import pipeline.gateway.fanout", "Engine layers"),
        ("client/subscribe.py", "import pipeline.kafka.clients", "client/ depends only"),
        ("loadgen/stats.py", "import pipeline.kafka.admin", "loadgen/ talks to the gateway"),
        ("pipeline/worker/batcher.py", "import confluent_kafka", "confluent_kafka is imported"),
        ("pipeline/analytics/stream.py", "import faust", "faust and aiokafka are imported only"),
        ("pipeline/gateway/fanout.py", "import pipeline.analytics.stream", "Engine layers"),
        (
            "connectors/sources/base.py",
            "from connectors.sources.video import VideoSource",
            "connectors' modules import no loop",
        ),
    ],
    ids=["engine", "layers", "client", "loadgen", "kafka", "faust", "siblings", "loop"],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, file: str, line: str, contract: str
) -> None:
    _copy_tree(tmp_path)
    target = tmp_path / file
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if " BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout
