"""Process helpers of pipeline/runtime.py."""

from __future__ import annotations

import subprocess
import sys


def test_idle_priority_is_taken_by_the_process_and_the_threads_it_starts() -> None:
    """SCHED_IDLE set before a thread starts is that thread's policy too (the worker sets it
    before its model's threads exist)."""
    script = (
        "import os, threading\n"
        "from pipeline.runtime import idle_priority, set_idle_priority\n"
        "assert not idle_priority()\n"
        "assert set_idle_priority() and idle_priority()\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))\n"
        "t.start(); t.join()\n"
        "assert seen == [os.SCHED_IDLE], seen\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
