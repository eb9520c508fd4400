"""pipeline.children with real processes: children die with their parent, stop() keeps time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import children
from tests.processes import process_gone, wait_until

REPO = Path(__file__).resolve().parents[2]

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PDEATHSIG is Linux")


def _grandchild_of_killed_parent(die_with_parent: bool) -> int:
    """Start a `python -c` parent that spawns `sleep 60`, SIGKILL the parent; the sleep's pid."""
    code = (
        "import sys, time\n"
        "from pipeline.children import spawn\n"
        f"child = spawn('sleeper', ['sleep', '60'], env=None, die_with_parent={die_with_parent})\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    # The launcher has exec'd `sleep` once /proc shows it (PDEATHSIG is set by then).
    assert wait_until(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == "sleep", 10)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return pid


@linux_only
def test_a_child_dies_when_its_parent_is_killed_outright() -> None:
    pid = _grandchild_of_killed_parent(die_with_parent=True)
    assert wait_until(lambda: process_gone(pid), 5), "the child outlived its SIGKILLed parent"


@linux_only
def test_without_die_with_parent_the_child_is_orphaned() -> None:
    pid = _grandchild_of_killed_parent(die_with_parent=False)  # the test above means something
    try:
        time.sleep(0.3)
        assert not process_gone(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_stop_keeps_its_grace_with_children_that_ignore_sigterm(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    started = [
        children.spawn(
            f"stubborn-{i}", [sys.executable, "-c", stubborn], env=None, log_path=tmp_path / f"{i}"
        )
        for i in range(2)
    ]
    started.append(children.spawn("polite", ["sleep", "60"], env=None))
    assert wait_until(lambda: all("ready" in c.tail() for c in started[:2]), 20)
    began = time.monotonic()
    codes = children.stop(started, grace_s=1.0, first=("stubborn-0",))
    elapsed = time.monotonic() - began
    assert elapsed < 2.0, f"stop() took {elapsed:.1f} s for a 1 s grace"  # one shared deadline
    assert codes == {"stubborn-0": -signal.SIGKILL, "stubborn-1": -signal.SIGKILL, "polite": -15}
    assert not any(c.running() for c in started)


def test_a_missing_program_fails_in_the_parent() -> None:
    with pytest.raises(FileNotFoundError):
        children.spawn("nothing", ["no-such-program-vae"], env=None)
