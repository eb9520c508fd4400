"""`make chromium`: Debian's package installed once, quietly, with one retry after an update."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "install_chromium.sh"


def run(tmp_path: Path, apt_fails_first: bool = False, **env: str) -> tuple[int, list[str], str]:
    """Run the script with a fake apt-get (and id) that record their calls."""
    calls = tmp_path / "calls"
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    fail = 'if [ "$1" = install ] && [ ! -e "$CALLS.updated" ]; then exit 100; fi\n'
    (shims / "apt-get").write_text(
        "#!/bin/sh\n"
        'echo "apt-get $*" >> "$CALLS"\n'
        'if [ "$1" = update ]; then touch "$CALLS.updated"; fi\n'
        + (fail if apt_fails_first else "")
    )
    (shims / "id").write_text("#!/bin/sh\necho 0\n")  # as root, as CI runs it
    for shim in shims.iterdir():
        shim.chmod(0o755)
    environment = {
        "PATH": f"{shims}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "CHROMIUM_BIN": str(tmp_path / "no-chromium-here"),
        **env,
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=30
    )
    lines = calls.read_text().splitlines() if calls.exists() else []
    return done.returncode, lines, done.stderr


def test_installs_the_package_when_chromium_is_missing(tmp_path: Path) -> None:
    code, calls, _ = run(tmp_path)
    assert code == 0
    assert calls == ["apt-get install -y -qq chromium"]


def test_updates_the_package_lists_once_when_the_install_fails(tmp_path: Path) -> None:
    code, calls, _ = run(tmp_path, apt_fails_first=True)
    assert code == 0
    assert calls == [
        "apt-get install -y -qq chromium",
        "apt-get update -qq",
        "apt-get install -y -qq chromium",
    ]


def test_does_nothing_when_chromium_is_there(tmp_path: Path) -> None:
    present = tmp_path / "chromium"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    assert run(tmp_path, CHROMIUM_BIN=str(present))[:2] == (0, [])
    assert run(tmp_path, VAE_CHROMIUM=str(present))[:2] == (0, [])


def test_a_wrong_vae_chromium_is_an_error(tmp_path: Path) -> None:
    code, calls, stderr = run(tmp_path, VAE_CHROMIUM=str(tmp_path / "missing"))
    assert code == 1 and calls == []
    assert "VAE_CHROMIUM" in stderr
