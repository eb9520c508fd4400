"""VAE_GATEWAY_PROCESSES: several gateway processes on one port, under a parent.

The parent serves nothing. It starts N `vae gateway` children with its own settings
(``to_env``) plus ``VAE_GATEWAY_PEER`` (``index/count/run folder``), restarts a child that
exits (with a backoff; it gives up when children keep dying at start), and stops them
with itself: SIGTERM and SIGINT are passed on, and a parent killed outright takes its
children along (pipeline.children: the kernel's parent-death signal).

Each child binds the port with SO_REUSEPORT, so the kernel spreads new connections over
them. The run folder holds the children's peer sockets (pipeline/gateway/peers.py: frames
and watched streams shared between them) and prometheus_client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``: /metrics on any child sums every child's series).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pipeline import children
from pipeline.config import Settings, to_env

log = logging.getLogger(__name__)

PEER_ENV = "VAE_GATEWAY_PEER"  # set by the parent for its children only
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it at import
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
EARLY_EXIT_S = 10.0  # a child that exits sooner than this after its start "failed to start"
MAX_EARLY_EXITS = 5  # in a row, across children: then the parent gives up
STOP_GRACE_S = 25.0  # children drain their sockets and flush their producers (10 s) first


@dataclass(frozen=True)
class PeerInfo:
    """Which child this process is, of how many, and where their shared folder is."""

    index: int
    count: int
    folder: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PeerInfo | None:
        raw = environ.get(PEER_ENV)
        if not raw:
            return None
        index, count, folder = raw.split("/", 2)
        return cls(int(index), int(count), Path(folder))

    def to_env(self) -> str:
        return f"{self.index}/{self.count}/{self.folder}"

    def socket(self, index: int) -> Path:
        """Where child ``index`` answers its peers."""
        return self.folder / f"peer-{index}.sock"

    @property
    def metrics_dir(self) -> Path:
        return self.folder / "metrics"


class _Slot:
    """One child position: the running child, when it started, and its restarts."""

    def __init__(self, peer: PeerInfo) -> None:
        self.peer = peer
        self.child: children.Child | None = None
        self.started = 0.0
        self.restart_at = 0.0
        self.restarts = 0


def supervise(settings: Settings) -> int:
    """Run ``settings.gateway.processes`` gateway children until SIGTERM or SIGINT."""
    count = settings.gateway.processes
    folder = Path(tempfile.mkdtemp(prefix="vae-gateway-"))
    (folder / "metrics").mkdir()
    base_env = {**os.environ, **to_env(settings), METRICS_ENV: str(folder / "metrics")}
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    slots = [_Slot(PeerInfo(i, count, folder)) for i in range(count)]

    def start(slot: _Slot) -> None:
        env = {**base_env, PEER_ENV: slot.peer.to_env()}
        slot.child = children.spawn(
            f"gateway-{slot.peer.index}",
            [sys.executable, "-m", "pipeline", "gateway"],
            env=env,
            inherit_output=True,
        )
        slot.started = time.monotonic()
        log.info("gateway process %d started (pid %d)", slot.peer.index, slot.child.pid)

    log.info("starting %d gateway processes on port %d", count, settings.gateway.port)
    early_exits = 0
    code = 0
    try:
        for slot in slots:
            start(slot)
        while not stopping:
            time.sleep(0.2)
            now = time.monotonic()
            for slot in slots:
                child = slot.child
                if child is None:
                    if now >= slot.restart_at and not stopping:
                        start(slot)
                    continue
                exit_code = child.returncode
                if exit_code is None:
                    continue
                _forget(child, folder)
                slot.child = None
                lived = now - slot.started
                early_exits = early_exits + 1 if lived < EARLY_EXIT_S else 0
                if early_exits >= MAX_EARLY_EXITS:
                    log.error(
                        "gateway processes keep exiting at start (last: process %d, code %s): "
                        "giving up",
                        slot.peer.index,
                        exit_code,
                    )
                    code = 1
                    stopping.append(0)
                    break
                delay = RESTART_BACKOFF_S[min(slot.restarts, len(RESTART_BACKOFF_S) - 1)]
                slot.restarts = slot.restarts + 1 if lived < 60.0 else 0
                slot.restart_at = now + delay
                log.warning(
                    "gateway process %d (pid %d) exited with code %s after %.0f s: "
                    "restarting it in %.1f s",
                    slot.peer.index,
                    child.pid,
                    exit_code,
                    lived,
                    delay,
                )
    finally:
        running = [slot.child for slot in slots if slot.child is not None]
        log.info("stopping %d gateway processes", len(running))
        children.stop(running, grace_s=STOP_GRACE_S)
        shutil.rmtree(folder, ignore_errors=True)
    return code


def _forget(child: children.Child, folder: Path) -> None:
    """A child is gone: its live gauges (connections, queue depth) leave /metrics; its
    counters and histograms stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(child.pid, str(folder / "metrics"))  # type: ignore[no-untyped-call]
