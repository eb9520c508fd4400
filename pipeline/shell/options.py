"""The options of the shell's own commands (`vae up`, `models`, `media`, `settings`, the
services' `--wait`), declared once like every other setting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from connectors.sinks.options import SINK_OPTIONS
from pipeline.config import SettingsError, fps_option, setting

SINKS = tuple(SINK_OPTIONS)
ASSET_ACTIONS = ("fetch", "where", "ensure")
ACTION_HELP = (
    "fetch: download (sha256-checked); where: show what is found; ensure: fetch only what is "
    "not found."
)


def durable_option() -> str:
    """``--durable`` of `vae up` and `vae broker`, which both run the embedded broker."""
    return setting(
        "",
        "Keep the embedded broker's records and committed offsets under this folder (Tansu "
        "on S3 storage from a local SeaweedFS), so they survive a broker restart; empty: in "
        "memory. Nothing is ever deleted: see README, The embedded broker.",
    )


@dataclass(frozen=True)
class UpOptions:
    """`vae up`: the whole engine on this machine."""

    SECTION: ClassVar[str] = "up"

    source: str = setting("", "Clip, photo or folder to replay (default: the sample clip).")
    cameras: str = setting(
        "", "Cameras file: run `vae cameras` with it in place of the replay (README, Cameras)."
    )
    streams: int = setting(4, "Replayed streams.")
    fps: float = fps_option(5.0)
    workers: int = setting(1, "Worker processes.")
    workers_nice: int = setting(
        10,
        "The workers' VAE_WORKER_NICE: detection runs at a lower CPU priority than ingest, so "
        "when the workers cannot keep up the gateway still takes every frame in real time "
        "and the backlog stays in the frames topic. 0: the same priority.",
    )
    workers_idle: bool = setting(
        True,
        "The workers' VAE_WORKER_IDLE_PRIORITY: detection runs under SCHED_IDLE, taking only "
        "CPU that ingest, the broker and the analytics leave (docs/benchmarks.md: ingest "
        "while detection is overloaded). --no-workers-idle: niceness alone.",
    )
    duration: float = setting(0.0, "Stop after this many seconds (0: run until Ctrl-C).")
    log_dir: str = setting("artifacts/up", "Where each process's log goes.")
    durable: str = durable_option()
    sinks: tuple[str, ...] = setting(
        (),
        "Also run `vae sink NAME` (postgres, mqtt, webhook; repeat the flag for several), "
        "each with its VAE_SINK_* settings from the environment (README, Sinks).",
        flag="--sink",
    )

    def validate(self) -> None:
        unknown = [s for s in self.sinks if s not in SINKS]
        if unknown:
            raise SettingsError(f"--sink {unknown[0]!r}: one of {', '.join(SINKS)}")


@dataclass(frozen=True)
class BrokerOptions:
    """`vae broker`: the embedded broker on its own."""

    SECTION: ClassVar[str] = "broker_cmd"

    durable: str = durable_option()


@dataclass(frozen=True)
class WaitOptions:
    """How long a service waits for the broker at start."""

    SECTION: ClassVar[str] = "start"

    wait: float = setting(30.0, "Seconds to wait for the broker.")


@dataclass(frozen=True)
class AssetOptions:
    """`vae models` and `vae media`: find or download files the engine never commits."""

    SECTION: ClassVar[str] = "assets"

    action: str = setting("", ACTION_HELP, positional=True, required=True, choices=ASSET_ACTIONS)
    names: tuple[str, ...] = setting(
        (), "Files to act on (default: every one the catalogue knows).", positional=True
    )
    dest: str = setting("", "Folder to download into (default: ./models or ./media).")


@dataclass(frozen=True)
class SettingsOptions:
    """`vae settings`: the effective settings, or the README's tables."""

    SECTION: ClassVar[str] = "settings"

    markdown: bool = setting(False, "Print every setting and command option as Markdown tables.")
