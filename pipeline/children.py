"""Child processes: one way to start them, stop them and wait for them.

`vae up`, the embedded broker, the benches and the tests all run other programs. Each used
to carry its own Popen/terminate/kill loop, and each left orphans behind in its own way:
a stop that waited on children one after another could outlast a supervisor's grace, and
a parent killed outright left every child running. Here:

* ``spawn`` puts a child in its own session (a Ctrl-C in the terminal reaches only the
  parent, which stops its children in order) and, on Linux, arranges that the child is
  killed when its parent dies, even by SIGKILL.
* ``stop`` signals every child at once and waits on one shared deadline, so it returns
  within its grace whatever the children do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Run by a fresh interpreter between fork and the real program: ask the kernel to SIGKILL
# this process when its parent dies (PR_SET_PDEATHSIG = 1), give up if the parent is
# already gone (it died before prctl took effect), then become the program (the setting
# survives execve, so it holds for the program itself). This replaces a `preexec_fn`,
# which is unsafe in a parent with threads (librdkafka runs several).
LAUNCHER = """\
import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


@dataclass
class Child:
    """A process this process started and must stop."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def tail(self, lines: int = 15) -> str:
        """The last lines of its log (what to show when it exits unexpectedly)."""
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code, or None if it still runs after ``timeout`` seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` unless it already exited (and was reaped: its pid may be reused)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL it and, when it leads its own session, whatever else it started there."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, signal.SIGKILL)
                return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class OwnedProcess:
    """A program run on behalf of this process (the embedded broker, its S3 store): at most
    one child at a time, its pid while it runs, and one way to end it."""

    def __init__(self) -> None:
        self._child: Child | None = None

    @property
    def pid(self) -> int | None:
        """The process's id while it runs (benchmarks read its CPU time)."""
        return self._child.pid if self._child is not None else None

    def running(self) -> bool:
        return self._child is not None and self._child.running()

    def _end(self, grace_s: float, sig: int = signal.SIGTERM) -> None:
        """``sig``, then SIGKILL after ``grace_s``; it is forgotten either way."""
        child, self._child = self._child, None
        if child is not None:
            stop([child], grace_s=grace_s, sig=sig)


def _launch(argv: Sequence[str], env: Mapping[str, str] | None, die_with_parent: bool) -> list[str]:
    path = (env if env is not None else os.environ).get("PATH")
    if shutil.which(argv[0], path=path) is None:  # fail here, as Popen would, not in the launcher
        raise FileNotFoundError(f"no such program: {argv[0]}")
    if not die_with_parent or not sys.platform.startswith("linux"):
        # Elsewhere there is no PDEATHSIG: a parent killed with SIGKILL may orphan its
        # children (a normal exit or stop() still stops them).
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", LAUNCHER, str(os.getpid()), *argv]


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    log_path: Path | None = None,
    append: bool = False,
    cwd: Path | str | None = None,
    new_session: bool = True,
    die_with_parent: bool = True,
    inherit_output: bool = False,
) -> Child:
    """Start ``argv`` with stdout and stderr to ``log_path`` (or nowhere; or, with
    ``inherit_output``, to this process's own stdout and stderr).

    ``env`` None inherits this process's environment. ``new_session`` keeps terminal
    signals (Ctrl-C) away from the child: the parent decides when and in which order its
    children stop. ``die_with_parent`` (Linux) has the kernel SIGKILL the child when the
    parent dies, however it dies. Caveat: the kernel ties this to the *thread* that
    started the child, so spawn from the main thread or from a thread that lives as long
    as the process; a child spawned from a short-lived thread dies with that thread.
    """
    out = log_path.open("ab" if append else "wb") if log_path is not None else None
    try:
        process = subprocess.Popen(
            _launch(argv, env, die_with_parent),
            stdin=subprocess.DEVNULL,
            stdout=out if out is not None else None if inherit_output else subprocess.DEVNULL,
            stderr=None if inherit_output and out is None else subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=new_session,
        )
    finally:
        if out is not None:
            out.close()
    return Child(name, process, log_path)


def spawn_vae(
    name: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    log_dir: Path,
    cwd: Path | str | None = None,
    new_session: bool = True,
    die_with_parent: bool = True,
) -> Child:
    """Start ``vae <args>`` (this interpreter's `python -m pipeline`), logging to
    ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    return spawn(
        name,
        [sys.executable, "-m", "pipeline", *args],
        env=env,
        log_path=log_dir / f"{name}.log",
        cwd=cwd,
        new_session=new_session,
        die_with_parent=die_with_parent,
    )


FIRST_SHARE = 0.25  # of the grace, for the `first` group before the others are signalled


def _wait_all(children: Sequence[Child], deadline: float) -> None:
    while any(c.running() for c in children):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.05, left))


def stop(
    children: Sequence[Child],
    *,
    grace_s: float = 8.0,
    first: Collection[str] = (),
    sig: int = signal.SIGTERM,
) -> dict[str, int]:
    """Stop children within ``grace_s`` seconds (plus about one to reap them).

    The children named in ``first`` (sources: they feed the others) get ``sig`` and a
    quarter of the grace to exit; then every other child gets ``sig`` at once, and all of
    them share one deadline, so ten slow children cost no more than one. Whatever still
    runs at the deadline is SIGKILLed. Returns each child's exit code by name (negative:
    the signal that ended it).
    """
    deadline = time.monotonic() + grace_s
    early = [c for c in children if c.name in first]
    for child in early:
        child.send_signal(sig)
    if early:
        _wait_all(early, time.monotonic() + grace_s * FIRST_SHARE)
    for child in children:
        if child.name not in first:
            child.send_signal(sig)
    _wait_all(children, deadline)
    for child in children:
        child.kill()
    reap_by = time.monotonic() + 1.0
    codes: dict[str, int] = {}
    for child in children:
        code = child.wait(max(0.0, reap_by - time.monotonic()))
        codes[child.name] = code if code is not None else -signal.SIGKILL
    return codes
