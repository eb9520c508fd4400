"""The images' HEALTHCHECK probe (deploy/docker/healthcheck.py) against a real HTTP server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.runtime import free_port
from tests.deploy.support import DEPLOY

PROBE = DEPLOY / "docker" / "healthcheck.py"


@pytest.fixture
def server() -> Iterator[tuple[int, dict[str, int]]]:
    """An HTTP server on a free port answering each path with the status set in the dict."""
    statuses: dict[str, int] = {"/healthz": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses.get(self.path, 404))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], statuses
    httpd.shutdown()
    httpd.server_close()


def probe(role: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROBE), role, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("role", "variable"), [("gateway", "VAE_GATEWAY_PORT"), ("worker", "VAE_WORKER_METRICS_PORT")]
)
def test_probe_reads_the_services_port_variable_and_passes_on_200(
    server: tuple[int, dict[str, int]], role: str, variable: str
) -> None:
    port, _ = server
    result = probe(role, {variable: str(port)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"127.0.0.1:{port}/healthz: 200" in result.stdout


def test_probe_fails_when_the_service_answers_an_error(server: tuple[int, dict[str, int]]) -> None:
    port, statuses = server
    statuses["/healthz"] = 503
    result = probe("gateway", {"VAE_GATEWAY_PORT": str(port)})
    assert result.returncode == 1
    assert "503" in result.stdout


def test_probe_fails_when_nothing_listens() -> None:
    result = probe("worker", {"VAE_WORKER_METRICS_PORT": str(free_port())})
    assert result.returncode == 1


def test_probe_can_ask_another_path(server: tuple[int, dict[str, int]]) -> None:
    port, statuses = server
    statuses["/readyz"] = 200
    assert probe("gateway", {"VAE_GATEWAY_PORT": str(port)}, "/readyz").returncode == 0


def test_probe_rejects_an_unknown_role() -> None:
    assert probe("broker", {}).returncode == 2
