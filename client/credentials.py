"""Where vae's clients find their token without being told: VAE_AUTH_TOKEN, else the
token file `vae up` writes ($XDG_CONFIG_HOME/vae/token, else ~/.config/vae/token)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "VAE_AUTH_TOKEN"


def token_file(environ: Mapping[str, str] | None = None) -> Path:
    """The token file's path (it need not exist)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vae" / "token"


def find_token(explicit: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The token to send: ``explicit``, VAE_AUTH_TOKEN, the token file, or "" (none)."""
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV].strip()
    try:
        return token_file(environ).read_text().strip()
    except OSError:
        return ""


def auth_headers(token: str = "") -> dict[str, str]:
    """The handshake headers that carry the token (none when no token is found)."""
    found = find_token(token)
    return {"Authorization": f"Bearer {found}"} if found else {}


def write_token_file(token: str, environ: Mapping[str, str] | None = None) -> Path:
    """Write the token file readable by its owner only (0600); return its path."""
    path = token_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    path.chmod(0o600)
    return path
