"""The secret `vae up` makes when none is configured, kept beside the token file so that
tokens (and the printed viewer URL) survive a restart and `vae token issue` finds it.

Both files are the owner's only (0600) in $XDG_CONFIG_HOME/vae (else ~/.config/vae).
Deleting the secret file rotates it: the next `vae up` makes a new one, and every token
signed with the old one is refused.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from client.credentials import token_file

# What `vae up` grants its own clients (replay, the summary, the viewer URL).
UP_SCOPES = ("ingest:*", "subscribe:*", "metrics", "admin")
UP_TOKEN_TTL_S = 30 * 86400


def secret_file(environ: Mapping[str, str] | None = None) -> Path:
    return token_file(environ).parent / "secret"


def read_secret(environ: Mapping[str, str] | None = None) -> str:
    """The secret `vae up` saved, or "" when there is none."""
    try:
        return secret_file(environ).read_text().strip()
    except OSError:
        return ""


def saved_or_new_secret(environ: Mapping[str, str] | None = None) -> str:
    """The saved secret, or a new random one saved (0600) for next time."""
    found = read_secret(environ)
    if found:
        return found
    path = secret_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret
