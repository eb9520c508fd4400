"""`make up` chooses Docker Compose when a Docker engine answers, otherwise the embedded
broker (`vae up`), and says which. Stand-in `docker` and `make` programs record how they
were called, so both paths are exercised here without a Docker engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, REPO, require_tool

SCRIPT = DEPLOY / "up.sh"


def stand_in(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def up(
    tmp_path: Path, docker_info_ok: bool | None, compose_ok: bool = True, **env: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run deploy/up.sh with stand-ins; returns the process and what the stand-ins were asked."""
    calls = tmp_path / "calls"
    record = f'echo "$(basename "$0") $*" >> {calls}'
    info, version = (0 if docker_info_ok else 1), (0 if compose_ok else 1)
    docker_body = (
        f"{record}\n"
        f'case "$1" in info) exit {info};; '
        f'compose) [ "$2" = version ] && exit {version}; exit 0;; esac'
    )
    docker = (
        stand_in(tmp_path, "docker", docker_body)
        if docker_info_ok is not None
        else tmp_path / "absent-docker"
    )
    make = stand_in(tmp_path, "make", record)
    result = subprocess.run(
        [str(SCRIPT)],
        env={"PATH": os.environ["PATH"], "DOCKER": str(docker), "MAKE": str(make), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, calls.read_text() if calls.exists() else ""


def test_a_docker_engine_means_compose_with_redpanda(tmp_path: Path) -> None:
    result, calls = up(tmp_path, docker_info_ok=True)
    assert result.returncode == 0, result.stderr
    assert (
        "a Docker engine answers" in result.stdout
        and "Docker Compose with Redpanda" in result.stdout
    )
    assert "docker compose -f deploy/compose/docker-compose.yml up --build" in calls
    assert "make" not in calls.replace("docker", "")


def test_a_client_without_an_engine_means_the_embedded_broker(tmp_path: Path) -> None:
    result, calls = up(tmp_path, docker_info_ok=False)
    assert result.returncode == 0, result.stderr
    assert "no Docker engine answers" in result.stdout and "embedded broker" in result.stdout
    assert "make --no-print-directory up-local" in calls
    assert "compose" not in calls


def test_no_docker_at_all_means_the_embedded_broker(tmp_path: Path) -> None:
    result, calls = up(tmp_path, docker_info_ok=None)
    assert result.returncode == 0, result.stderr
    assert "no '" in result.stdout and "up-local" in calls


def test_up_mode_forces_a_path(tmp_path: Path) -> None:
    result, calls = up(tmp_path, docker_info_ok=True, UP_MODE="local")
    assert "UP_MODE=local" in result.stdout and "up-local" in calls and "compose" not in calls


def test_compose_without_its_plugin_stops_with_advice(tmp_path: Path) -> None:
    result, calls = up(tmp_path, docker_info_ok=True, compose_ok=False)
    assert result.returncode == 1
    assert "Compose plugin is missing" in result.stderr and "UP_MODE=local" in result.stderr
    assert " up --build" not in calls


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    result, _ = up(tmp_path, docker_info_ok=True, UP_MODE="cloud")
    assert result.returncode == 2 and "UP_MODE must be" in result.stderr


def test_make_up_runs_the_script_and_up_local_runs_vae_up() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "deploy/up.sh" in makefile.split("\nup:", 1)[1].split("\n\n", 1)[0]
    assert "$(VAE) up $(UP_ARGS)" in makefile.split("\nup-local:", 1)[1].split("\n\n", 1)[0]


def test_script_passes_shellcheck() -> None:
    shellcheck = require_tool("shellcheck")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)


def test_compose_gets_a_kept_secret_and_tokens_the_gateway_accepts(tmp_path: Path) -> None:
    """The secret in secrets/auth.env (0600, made once), the viewer URL's token and the one
    Prometheus scrapes with, signed by the script with openssl, verify as the gateway does."""
    require_tool("openssl")
    from pipeline.auth.tokens import Verifier

    result, _ = up(tmp_path, docker_info_ok=True)
    assert result.returncode == 0, result.stderr
    secrets = DEPLOY / "compose" / "secrets"
    auth_env = secrets / "auth.env"
    assert auth_env.stat().st_mode & 0o777 == 0o600
    secret = auth_env.read_text().strip().removeprefix("VAE_AUTH_SECRET=")
    assert len(secret) == 64
    verifier = Verifier(secret=secret)
    viewer = result.stdout.split("http://localhost:8080/#token=")[1].split()[0]
    grant = verifier.verify(viewer)
    assert grant.may_subscribe_all() and grant.may_ingest("cam-1") and not grant.metrics
    assert verifier.verify((secrets / "gateway-metrics.token").read_text()).metrics
    again, _ = up(tmp_path, docker_info_ok=True)
    assert again.returncode == 0, again.stderr
    assert auth_env.read_text().strip().endswith(secret)  # kept: tokens survive a restart
