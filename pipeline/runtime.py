"""Small facts and knobs of the running process: ports, cores, CPU time, the garbage collector.

Kept in one place because services, benchmarks, loadgen and tests all need the same few
(and each used to carry its own copy).
"""

from __future__ import annotations

import gc
import os
import resource
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP port can be bound right now (nothing listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def usable_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_idle_priority() -> bool:
    """Put this process (and every thread it starts afterwards) under SCHED_IDLE: it runs
    only on CPU that normal-priority work leaves. False where the OS has no such policy."""
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is None:
        return False
    os.sched_setscheduler(0, policy, os.sched_param(0))
    return True


def idle_priority() -> bool:
    """Whether this process runs under SCHED_IDLE."""
    policy = getattr(os, "SCHED_IDLE", None)
    return policy is not None and os.sched_getscheduler(0) == policy


def process_cpu_seconds() -> float:
    """CPU time of this process, every thread, user and system (the OS's accounting)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pid_cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system, every thread) of another process; 0.0 where /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, theirs, and so on (Linux /proc; [] elsewhere)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU time of a process and every live process under it (a parent and its workers)."""
    if pid is None:
        return 0.0
    return sum(pid_cpu_seconds(p) for p in (pid, *descendants(pid)))


def time_gc_pauses(observe: Callable[[int, float], None]) -> Callable[[], None]:
    """Report every collector pause as ``observe(generation, seconds)``; returns the undo."""
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observe(int(info["generation"]), time.perf_counter() - started[0])

    gc.callbacks.append(callback)
    return lambda: gc.callbacks.remove(callback)


def tune_gc_for_many_connections(young_threshold: int) -> None:
    """Fewer, cheaper collections for a process holding thousands of long-lived sockets.

    Freeze what exists at startup (modules, settings: never garbage) out of every future
    scan, and let the young generation grow to ``young_threshold`` objects so that
    per-frame objects die young instead of being promoted and rescanned by full
    collections. 0 leaves Python's defaults.
    """
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle * 2, old * 2)
