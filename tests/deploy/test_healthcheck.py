"""The images' HEALTHCHECK probe (deploy/docker/healthcheck.py) against a real HTTP server."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

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


def test_probe_speaks_https_to_a_gateway_with_tls(server: tuple[int, dict[str, int]]) -> None:
    """With VAE_GATEWAY_TLS_CERT the probe asks https:// (a certificate the test makes)."""
    port, _ = server
    ca = trustme.CA()
    cert = ca.issue_cert("vae-gateway")  # names the service, not 127.0.0.1: still probed
    tls_port = free_port()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", tls_port), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        env = {"VAE_GATEWAY_PORT": str(tls_port), "VAE_GATEWAY_TLS_CERT": "/run/cert.pem"}
        result = probe("gateway", env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"https://127.0.0.1:{tls_port}/healthz: 200" in result.stdout
        plain = probe("gateway", {"VAE_GATEWAY_PORT": str(port)})
        assert f"http://127.0.0.1:{port}/healthz: 200" in plain.stdout
    finally:
        httpd.shutdown()
        httpd.server_close()
