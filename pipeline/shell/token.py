"""`vae token issue`: print a signed token with the scopes asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.auth.scopes import SCOPE_RULE, BadScope
from pipeline.auth.tokens import issue, parse_ttl
from pipeline.config import AuthSettings, SettingsError, setting
from pipeline.shell.credentials import read_secret


@dataclass(frozen=True)
class TokenOptions:
    """`vae token issue`: who may do what, for how long."""

    SECTION: ClassVar[str] = "token"

    scope: tuple[str, ...] = setting(
        (), f"A scope to grant (repeat the flag for more): {SCOPE_RULE}.", required=True
    )
    ttl: str = setting("24h", "How long the token is valid: 90s, 15m, 24h, 30d.")
    subject: str = setting("vae", "Who the token is for (its `sub` claim, shown in logs never).")


def issue_token(options: TokenOptions, auth: AuthSettings) -> str:
    """A token signed with VAE_AUTH_SECRET, else the secret `vae up` saved."""
    secret = auth.secret or read_secret()
    if not secret:
        raise SettingsError(
            "no secret to sign with: set VAE_AUTH_SECRET (the gateway's), or run `vae up` "
            "once (it saves one)"
        )
    try:
        return issue(secret, options.scope, parse_ttl(options.ttl), options.subject)
    except (BadScope, ValueError) as exc:
        raise SettingsError(str(exc)) from None
