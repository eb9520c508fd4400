"""Fetching an identity provider's JWKS document (the one part of auth that does I/O)."""

from __future__ import annotations

import json
import urllib.request

MAX_JWKS_BYTES = 1_048_576


def fetch_jwks(url: str, timeout_s: float = 10.0) -> str:
    """The JWKS document at ``url`` as JSON text; raises on an unreachable or bad document."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"VAE_AUTH_JWKS_URL={url!r}: use an http(s) URL")
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:
        text: str = reply.read(MAX_JWKS_BYTES).decode()
    if not isinstance(json.loads(text).get("keys"), list):
        raise ValueError(f"{url} is not a JWKS document (no keys list)")
    return text
