"""The gateway's door: the token and Origin of each request, checked before anything else.

Decisions come from pipeline.auth.policy (pure); here they are counted and turned into
HTTP answers (a refused WebSocket handshake is an HTTP answer too). Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from websockets.http11 import Request, Response

from pipeline.auth.jwks import fetch_jwks
from pipeline.auth.policy import Refused, decide, token_of
from pipeline.auth.scopes import Grant
from pipeline.auth.tokens import Verifier
from pipeline.config import AuthSettings, GatewaySettings, SettingsError
from pipeline.gateway.http import response
from pipeline.metrics import GatewayMetrics
from pipeline.protocol.routes import Route

log = logging.getLogger(__name__)

JWKS_REFRESH_S = 600.0
MIN_SECRET_CHARS = 32  # HS256 wants a key of at least 256 bits (RFC 7518)


def _public_key(value: str) -> str:
    if not value or value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text()
    except OSError as exc:
        raise SettingsError(
            f"VAE_AUTH_PUBLIC_KEY: not a PEM key, nor a readable file ({exc})"
        ) from None


def build_verifier(auth: AuthSettings) -> Verifier | None:
    """The verifier of the settings (None when auth is off); fetches the JWKS if one is set."""
    if not auth.enabled:
        log.warning("VAE_AUTH=off: anyone who reaches this port may send and watch every stream")
        return None
    jwks = fetch_jwks(auth.jwks_url) if auth.jwks_url else ""
    verifier = Verifier(auth.secret, _public_key(auth.public_key), jwks, auth.audience, auth.issuer)
    if auth.secret and len(auth.secret) < MIN_SECRET_CHARS:
        raise SettingsError(
            f"VAE_AUTH_SECRET is too short to be safe: use {MIN_SECRET_CHARS} characters or "
            "more (say, `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if not verifier.configured:
        raise SettingsError(
            "auth is on but no key verifies tokens: set VAE_AUTH_SECRET (then issue tokens "
            "with `vae token issue`), VAE_AUTH_PUBLIC_KEY or VAE_AUTH_JWKS_URL; or VAE_AUTH=off "
            "to let anyone in"
        )
    return verifier


def tls_context(gateway: GatewaySettings) -> ssl.SSLContext | None:
    """The server's TLS context (VAE_GATEWAY_TLS_CERT/KEY), or None for plain HTTP."""
    if not gateway.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(gateway.tls_cert, gateway.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            f"VAE_GATEWAY_TLS_CERT={gateway.tls_cert!r} / VAE_GATEWAY_TLS_KEY: cannot be "
            f"loaded as a PEM certificate and its key ({exc})"
        ) from None
    return context


class Door:
    """Checks every request; holds the verifier (refreshed when keys come from a JWKS URL)."""

    def __init__(
        self, verifier: Verifier | None, allowed_origins: tuple[str, ...], metrics: GatewayMetrics
    ) -> None:
        self.verifier = verifier
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)
        self.metrics = metrics

    def origin_allowed(self, request: Request) -> bool:
        """No Origin (not a browser), the gateway's own origin, or an allowed one."""
        origin = request.headers.get("Origin")
        if origin is None or "*" in self.allowed_origins:
            return True
        origin = origin.rstrip("/")
        if origin in self.allowed_origins:
            return True
        host = request.headers.get("Host", "")
        return bool(host) and urlsplit(origin).netloc == host

    def check(self, request: Request, target: Route, upgrade: bool) -> Grant | Response:
        """The grant the request acts under, or the response that refuses it."""
        if upgrade and not self.origin_allowed(request):
            self.metrics.auth_refused.labels("origin").inc()
            return response(403, "this origin may not open WebSockets here\n")
        token = token_of(request.headers.get("Authorization"), request.path)
        decision = decide(self.verifier, target, token)
        if isinstance(decision, Refused):
            self.metrics.auth_refused.labels(decision.reason).inc()
            challenge = 'Bearer realm="vae"'
            if decision.status == 401 and decision.reason != "missing":
                challenge += ', error="invalid_token"'
            elif decision.status == 403:
                challenge += ', error="insufficient_scope"'
            return response(decision.status, decision.message + "\n", WWW_Authenticate=challenge)
        return decision

    async def refresh_jwks(self, url: str, closing: asyncio.Event) -> None:
        """Fetch the JWKS again every JWKS_REFRESH_S (keys rotate); a failure keeps the old."""
        loop = asyncio.get_running_loop()
        while not closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), JWKS_REFRESH_S)
            if closing.is_set() or self.verifier is None:
                return
            try:
                jwks = await loop.run_in_executor(None, fetch_jwks, url)
            except Exception as exc:  # keep verifying with the keys we have
                log.warning("JWKS refresh from %s failed: %s", url, exc)
                continue
            old = self.verifier
            self.verifier = Verifier(old.secret, old.public_key, jwks, old.audience, old.issuer)
