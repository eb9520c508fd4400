"""`vae cameras`: every camera of a cameras file, each on its own, pushed to the gateway.

The runner owns the cameras by id. A change of the file (checked every ``reload`` seconds,
and on SIGHUP) or a call of the HTTP API starts the cameras added, restarts those changed
and stops those removed; a camera whose configuration is unchanged is never touched. A
file that no longer parses is refused with its error and the cameras keep running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from websockets.exceptions import InvalidURI

from connectors.cameras.camera import Camera
from connectors.cameras.config import CameraConfig, CameraConfigError, load_cameras
from connectors.cameras.health import StatusServer
from connectors.cameras.options import CamerasOptions

log = logging.getLogger(__name__)
T = TypeVar("T")


class CameraRunner:
    """The cameras by id, changed one at a time on the event loop."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.cameras: dict[str, Camera] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    async def apply(self, wanted: dict[str, CameraConfig]) -> None:
        """Make the running cameras those of ``wanted``, touching only what differs."""
        for cam_id in [c for c in self.cameras if c not in wanted]:
            await self.remove(cam_id)
        for config in wanted.values():
            await self.put(config)

    async def put(self, config: CameraConfig) -> bool:
        """Add or change one camera; True when it is new. Unchanged: left alone."""
        current = self.cameras.get(config.id)
        if current is not None and current.config == config:
            return False
        if current is not None:
            await current.stop()
            log.info("camera %s: changed, restarting", config.id)
        camera = Camera(config, self.gateway)
        self.cameras[config.id] = camera
        camera.start()
        if current is None:
            log.info("camera %s: added (%s)", config.id, config.url)
        return current is None

    async def remove(self, cam_id: str) -> bool:
        camera = self.cameras.pop(cam_id, None)
        if camera is None:
            return False
        await camera.stop()
        log.info("camera %s: removed", cam_id)
        return True

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.cameras.values()))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """From another thread (the HTTP server): run ``coro`` on the loop and wait for it."""
        if self.loop is None:
            coro.close()
            raise RuntimeError("the runner is not running")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def camera_status(self, cam_id: str) -> dict[str, Any]:
        camera = self.cameras[cam_id]
        return {**camera.config.to_json(), **camera.health.to_json()}

    def status(self) -> list[dict[str, Any]]:
        return [self.camera_status(c) for c in list(self.cameras)]


async def watch_file(runner: CameraRunner, path: Path, every: float, hup: asyncio.Event) -> None:
    """Apply the file whenever its contents change (polled, or at once on SIGHUP)."""
    last = await asyncio.to_thread(path.read_bytes)
    while True:
        if every > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hup.wait(), every)
        else:
            await hup.wait()
        forced = hup.is_set()
        hup.clear()
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            log.error("cameras file %s: %s; keeping the cameras as they are", path, exc)
            continue
        if data == last and not forced:
            continue
        last = data
        try:
            wanted = await asyncio.to_thread(load_cameras, path)
        except CameraConfigError as exc:
            log.error("%s; keeping the cameras as they are", exc)
            continue
        log.info("cameras file %s changed: applying", path)
        await runner.apply(wanted)


async def run(options: CamerasOptions, gateway: str) -> None:
    path = Path(options.cameras)
    wanted = load_cameras(path)
    runner = CameraRunner(gateway)
    runner.loop = asyncio.get_running_loop()
    server = StatusServer(runner, options.host, options.port).start()
    print(
        f"cameras: {len(wanted)} from {path} to {gateway}; "
        f"status http://{options.host}:{server.port}/v1/cameras, "
        f"metrics http://{options.host}:{server.port}/metrics",
        flush=True,
    )
    stopped = asyncio.Event()
    hup = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    await runner.apply(wanted)
    watcher = asyncio.create_task(watch_file(runner, path, options.reload, hup))
    try:
        await stopped.wait()
    finally:
        watcher.cancel()
        await runner.stop()
        server.stop()


def run_cameras(options: CamerasOptions, default_gateway: str) -> int:
    """Entry point of `vae cameras`."""
    gateway = options.gateway or default_gateway
    if not gateway.startswith(("ws://", "wss://")):
        raise InvalidURI(gateway, "the gateway URL must start with ws:// or wss://")
    load_cameras(Path(options.cameras))  # a bad file fails here, before anything starts
    asyncio.run(run(options, gateway))
    return 0
