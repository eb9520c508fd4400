"""The runner's HTTP side: `/metrics` (its own Prometheus registry), JSON status, and the API.

A small threaded HTTP server (the standard library's) beside the event loop: reads take a
snapshot of the cameras' health, changes are handed to the loop and awaited, so the loop
never blocks on a client.

    GET    /healthz                 ok
    GET    /metrics                 Prometheus text
    GET    /v1/cameras              {"cameras": [{id, url, ..., state, last_frame_age_s, ...}]}
    GET    /v1/cameras/{id}         one camera
    PUT    /v1/cameras/{id}         add or change one camera (JSON body: the file's keys)
    DELETE /v1/cameras/{id}         remove one camera
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.cameras.camera import STATES, Camera
from connectors.cameras.config import CameraConfig, CameraConfigError, parse_camera

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
T = TypeVar("T")


class CameraRunner(Protocol):
    """What the HTTP side needs of the runner (connectors.cameras.runner, which imports this)."""

    cameras: dict[str, Camera]

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T: ...

    async def put(self, config: CameraConfig) -> bool: ...

    async def remove(self, cam_id: str) -> bool: ...

    def camera_status(self, cam_id: str) -> dict[str, Any]: ...

    def status(self) -> list[dict[str, Any]]: ...


class CameraCollector(Collector):
    """Reads every camera's health at scrape time, so removed cameras leave no series."""

    def __init__(self, runner: CameraRunner) -> None:
        self.runner = runner

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "vae_camera_state", "1 for the camera's current state.", labels=["camera", "state"]
        )
        age = GaugeMetricFamily(
            "vae_camera_last_frame_age_seconds",
            "Seconds since the camera's last decoded frame (absent before the first).",
            labels=["camera"],
        )
        counters = {
            name: CounterMetricFamily(f"vae_camera_{name}", text, labels=["camera"])
            for name, text in (
                ("reconnects", "Times the camera was reopened after a failure."),
                ("decode_errors", "Packets that would not decode."),
                ("frames_sent", "Frames sent to the gateway."),
                ("frames_dropped", "Frames dropped, oldest first, while the gateway lagged."),
            )
        }
        for cam_id, camera in list(self.runner.cameras.items()):
            h = camera.health
            for s in STATES:
                state.add_metric([cam_id, s], 1.0 if h.state == s else 0.0)
            if (a := h.last_frame_age_s()) is not None:
                age.add_metric([cam_id], a)
            for name, family in counters.items():
                family.add_metric([cam_id], float(getattr(h, name)))
        yield state
        yield age
        yield from counters.values()


def make_registry(runner: CameraRunner) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CameraCollector(runner))
    return registry


class StatusServer:
    """The runner's HTTP endpoint on ``host:port`` (port 0: a free one), in a daemon thread."""

    def __init__(self, runner: CameraRunner, host: str, port: int) -> None:
        registry = make_registry(runner)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _reply(self, status: int, body: object, content_type: str = "") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _camera_id(self) -> str | None:
                prefix = "/v1/cameras/"
                path = self.path.split("?")[0]
                return path[len(prefix) :] if path.startswith(prefix) else None

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/healthz":
                    self._reply(200, {"status": "ok"})
                elif path == "/metrics":
                    self._reply(200, generate_latest(registry), "text/plain; version=0.0.4")
                elif path == "/v1/cameras":
                    self._reply(200, {"cameras": runner.status()})
                elif (cam_id := self._camera_id()) and cam_id in runner.cameras:
                    self._reply(200, runner.camera_status(cam_id))
                else:
                    self._reply(404, {"error": "not_found", "message": f"no {path}"})

            def do_PUT(self) -> None:
                cam_id = self._camera_id()
                if not cam_id:
                    self._reply(404, {"error": "not_found", "message": "PUT /v1/cameras/{id}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._reply(413, {"error": "too_large", "message": f"over {MAX_BODY} bytes"})
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                    if isinstance(body, dict):
                        body = {"id": cam_id, **body}
                        if body["id"] != cam_id:
                            raise CameraConfigError(f"camera {cam_id!r}: key 'id' differs")
                    camera = parse_camera(body, "request body")
                except (ValueError, CameraConfigError) as exc:
                    self._reply(400, {"error": "bad_camera", "message": str(exc)})
                    return
                created = runner.call(runner.put(camera))
                self._reply(201 if created else 200, runner.camera_status(cam_id))

            def do_DELETE(self) -> None:
                cam_id = self._camera_id()
                if not cam_id or not runner.call(runner.remove(cam_id)):
                    self._reply(404, {"error": "not_found", "message": f"no camera {cam_id!r}"})
                    return
                self._reply(200, {"removed": cam_id})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="cameras-http", daemon=True
        )

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
