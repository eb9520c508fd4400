"""Container HEALTHCHECK for the vae images: GET /healthz of the gateway or the worker.

Standard library only, so the probe works in every image without curl or wget. The port
comes from the same environment variables the services read (VAE_GATEWAY_PORT,
VAE_WORKER_METRICS_PORT), so a changed port never breaks the health check.

Usage: python healthcheck.py gateway|worker [path]   (exit 0 healthy, 1 not)
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

PORTS = {"gateway": ("VAE_GATEWAY_PORT", "8080"), "worker": ("VAE_WORKER_METRICS_PORT", "9101")}


def probe_url(role: str, path: str = "/healthz", environ: dict[str, str] | None = None) -> str:
    """The URL the probe asks, from the role's port variable (or its default)."""
    env = os.environ if environ is None else environ
    variable, default = PORTS[role]
    port = env.get(variable) or default
    scheme = "https" if role == "gateway" and env.get("VAE_GATEWAY_TLS_CERT") else "http"
    return f"{scheme}://127.0.0.1:{port}{path}"


def healthy(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """True when the URL answers 200; otherwise False and why."""
    try:
        # The probe asks its own container: the certificate names the service, not 127.0.0.1.
        context = ssl._create_unverified_context() if url.startswith("https") else None
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[0] not in PORTS:
        print(f"usage: healthcheck.py {'|'.join(PORTS)} [path]", file=sys.stderr)
        return 2
    path = argv[1] if len(argv) == 2 else "/healthz"
    ok, detail = healthy(probe_url(argv[0], path))
    print(detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
