"""Where vae's clients find their token, the files `vae up` keeps, and `vae token issue`."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from client.credentials import auth_headers, find_token, token_file, write_token_file
from pipeline.auth.tokens import Verifier
from pipeline.shell.credentials import saved_or_new_secret, secret_file

REPO = Path(__file__).resolve().parents[2]


def test_an_explicit_token_wins_then_the_variable_then_the_file(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert find_token(environ=env) == ""  # nothing anywhere: no header is sent
    path = write_token_file("from-file", env)
    assert path == tmp_path / "vae" / "token" == token_file(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert find_token(environ=env) == "from-file"
    assert find_token(environ={**env, "VAE_AUTH_TOKEN": "from-env"}) == "from-env"
    assert find_token("explicit", {**env, "VAE_AUTH_TOKEN": "from-env"}) == "explicit"
    assert auth_headers("abc") == {"Authorization": "Bearer abc"}


def test_the_secret_is_made_once_then_kept_owner_only(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    first = saved_or_new_secret(env)
    assert len(first) >= 32 and saved_or_new_secret(env) == first
    assert stat.S_IMODE(secret_file(env).stat().st_mode) == 0o600


def vae(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO,
    )  # fmt: skip


def test_vae_token_issue_prints_a_token_with_the_scopes_asked_for(tmp_path: Path) -> None:
    secret = "x" * 40
    env = {"PATH": "/usr/bin:/bin", "VAE_AUTH_SECRET": secret, "HOME": str(tmp_path)}
    args = ("token", "issue", "--scope", "ingest:cam-*", "--scope", "subscribe:*", "--ttl", "24h")
    result = vae(*args, env=env)
    assert result.returncode == 0, result.stderr
    grant = Verifier(secret=secret).verify(result.stdout.strip())
    assert grant.scopes == {"ingest:cam-*", "subscribe:*"}
    bad = vae("token", "issue", "--scope", "root", env=env)
    assert bad.returncode == 2 and "bad scope 'root'" in bad.stderr
    missing = vae("token", "issue", env=env)
    assert missing.returncode == 2 and "--scope" in missing.stderr
    no_secret = vae("token", "issue", "--scope", "admin", env={**env, "VAE_AUTH_SECRET": ""})
    assert no_secret.returncode == 2 and "VAE_AUTH_SECRET" in no_secret.stderr
