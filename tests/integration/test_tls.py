"""VAE_GATEWAY_TLS_CERT / VAE_GATEWAY_TLS_KEY: https:// and wss:// on the gateway's one port,
with a certificate authority and certificate the test makes (trustme)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trustme

from client import IngestClient
from pipeline import children
from pipeline.runtime import free_port
from tests.conftest import AUTH, REPO, Service, Stack, start_service

pytestmark = pytest.mark.integration


def get(url: str, context: ssl.SSLContext, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_ready(service: Service, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert service.process.poll() is None, service.log()
        with contextlib.suppress(OSError):
            if get(service.http + "/readyz", context) == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"not ready over https:\n{service.log()}")


async def test_the_gateway_serves_https_and_wss_on_one_port(
    stack: Stack, tmp_path: Path, dog_jpeg: bytes
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    client = ssl.create_default_context()
    ca.configure_trust(client)

    port = free_port()
    env = stack.with_env(
        VAE_GATEWAY_PORT=str(port),
        VAE_GATEWAY_HOST="127.0.0.1",
        VAE_GATEWAY_TLS_CERT=str(chain),
        VAE_GATEWAY_TLS_KEY=str(key),
    )
    gateway = start_service(
        stack, f"gateway-tls-{port}", ["gateway"], env, f"https://127.0.0.1:{port}"
    )
    await asyncio.to_thread(wait_ready, gateway, client)

    assert await asyncio.to_thread(get, gateway.http + "/healthz", client) == 200
    assert await asyncio.to_thread(get, gateway.http + "/v1/streams", client) == 401
    assert await asyncio.to_thread(get, gateway.http + "/v1/streams", client, AUTH) == 200
    async with IngestClient(f"wss://127.0.0.1:{port}", "cam-tls", ack=True, ssl=client) as cam:
        await cam.send(dog_jpeg, 0)
        assert (await cam.receive()).frame_id == 0
    # Plain HTTP on that port gets no answer; a client that does not trust the CA, no session.
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises((OSError, http.client.HTTPException)):
        plain.request("GET", "/healthz")
        plain.getresponse()
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(get, gateway.http + "/healthz", ssl.create_default_context())


def test_an_unreadable_certificate_stops_the_gateway_naming_the_setting(
    stack: Stack, tmp_path: Path
) -> None:
    env = stack.with_env(
        VAE_GATEWAY_PORT=str(free_port()),
        VAE_GATEWAY_TLS_CERT=str(tmp_path / "missing.pem"),
        VAE_GATEWAY_TLS_KEY=str(tmp_path / "missing-key.pem"),
    )
    child = children.spawn_vae("gateway-badtls", ["gateway"], env=env, log_dir=tmp_path, cwd=REPO)
    try:
        assert child.process.wait(60) == 2
    finally:
        children.stop([child], grace_s=5)
    assert "VAE_GATEWAY_TLS_CERT" in child.tail()
