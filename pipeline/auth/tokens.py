"""Minting and verifying signed tokens (JWT): HS256 with a shared secret, or an identity
provider's public keys (a PEM key or a JWKS document) for RS*/ES*/PS*/EdDSA tokens.

Scopes travel in the standard ``scope`` claim (space-separated, as OAuth 2 and OIDC
issuers such as Keycloak or Cognito write it) or in ``scp`` (a list, as some others do).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import jwt

from pipeline.auth.scopes import Grant, check_scope

HS_ALGORITHMS = ["HS256"]
PUBLIC_ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
LEEWAY_S = 30  # clock skew tolerated on exp/nbf/iat
MAX_TOKEN_CHARS = 8192  # a longer "token" is refused before any parsing


class AuthError(Exception):
    """A token that grants nothing; ``reason`` labels the refusal counter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # missing | malformed | expired | forged | invalid


def issue(
    secret: str, scopes: Iterable[str], ttl_s: float, subject: str = "vae", now: float | None = None
) -> str:
    """An HS256 token carrying ``scopes`` that expires ``ttl_s`` seconds from now."""
    if not secret:
        raise ValueError("a token is signed with a secret: none was given")
    checked = [check_scope(s) for s in scopes]
    if not checked:
        raise ValueError("a token needs at least one scope")
    if ttl_s <= 0:
        raise ValueError("a token's ttl must be positive")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "scope": " ".join(checked),
        "iat": issued,
        "exp": issued + int(ttl_s),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def parse_ttl(text: str) -> float:
    """``90s``, ``15m``, ``24h``, ``30d`` or plain seconds, as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    try:
        value = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        raise ValueError(f"bad ttl {text!r}: use a number with s, m, h or d (24h)") from None
    if value <= 0:
        raise ValueError(f"bad ttl {text!r}: must be positive")
    return value


@dataclass(frozen=True)
class Verifier:
    """Checks signature, expiry and (when configured) audience and issuer of a token."""

    secret: str = ""
    public_key: str = ""  # PEM
    jwks: str = ""  # a JWKS document (JSON text), fetched by the caller
    audience: str = ""
    issuer: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.secret or self.public_key or self.jwks)

    @cached_property
    def _jwks_keys(self) -> list[jwt.PyJWK]:
        """The JWKS's keys, parsed once (a bad document fails at start, not per request)."""
        return list(jwt.PyJWKSet.from_json(self.jwks).keys) if self.jwks else []

    def _key(self, header: dict[str, object]) -> tuple[object, list[str]]:
        alg = header.get("alg")
        if alg in HS_ALGORITHMS and self.secret:
            return self.secret, HS_ALGORITHMS
        if alg in PUBLIC_ALGORITHMS and self.public_key:
            return self.public_key, PUBLIC_ALGORITHMS
        if alg in PUBLIC_ALGORITHMS and self.jwks:
            kid = header.get("kid")
            for key in self._jwks_keys:
                if kid is None or key.key_id == kid:
                    return key.key, PUBLIC_ALGORITHMS
            raise AuthError("forged", "no key of the JWKS has the token's kid")
        raise AuthError("forged", f"tokens signed with {alg!r} are not accepted here")

    def verify(self, token: str | None) -> Grant:
        """The token's grant, or AuthError with the reason it grants nothing."""
        if not token:
            raise AuthError("missing", "a token is required")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("malformed", "token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed", "not a signed token (JWT)") from None
        key, algorithms = self._key(header)
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=algorithms,
                audience=self.audience or None,
                issuer=self.issuer or None,
                leeway=LEEWAY_S,
                options={"require": ["exp"], "verify_aud": bool(self.audience)},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired", "the token has expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("forged", "the token's signature does not verify") from None
        except (jwt.DecodeError, json.JSONDecodeError, ValueError, TypeError):
            raise AuthError("malformed", "the token cannot be decoded") from None
        except jwt.PyJWTError as exc:
            raise AuthError("invalid", f"the token is not valid here: {exc}") from None
        return Grant.of(_scopes(claims), str(claims.get("sub", "")))


def _scopes(claims: dict[str, object]) -> list[str]:
    found: list[str] = []
    scope = claims.get("scope")
    if isinstance(scope, str):
        found += scope.split()
    scp = claims.get("scp")
    if isinstance(scp, str):
        found += scp.split()
    elif isinstance(scp, list):
        found += [s for s in scp if isinstance(s, str)]
    return found
