"""Shared helpers of the deployment checks: paths, external tools, the `vae` command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import config
from pipeline.shell.cli import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TERRAFORM = REPO / "terraform"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose" / "docker-compose.yml"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yaml"

KNOWN_ENV = frozenset(option.env for option in config.options()) | frozenset(
    option.env
    for command in COMMANDS
    for cls, only in command.options
    for option in config.command_options(cls, only)
)


def require_tool(name: str) -> str:
    """The tool's path, or skip the test saying which tool is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here: this deployment check did not run")
    return path


def run(args: list[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300):
    """Run a command and return the finished process (never raises on a non-zero exit)."""
    return subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def assert_vae_command(args: Iterable[str], where: str) -> str:
    """Fail unless `vae ARGS` parses with the real CLI; returns the sub-command."""
    argv = [str(a) for a in args]
    try:
        parsed = build_parser().parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"{where}: `vae {' '.join(argv)}` is not a valid vae command") from exc
    return str(parsed.command)


def assert_vae_environment(env: Mapping[str, str], where: str) -> config.Settings:
    """Every VAE_* name is a real setting and the values load; returns the settings."""
    unknown = sorted(name for name in env if name.startswith("VAE_") and name not in KNOWN_ENV)
    assert not unknown, f"{where}: unknown settings {unknown} (see `vae settings --markdown`)"
    try:
        return config.load(environ={k: str(v) for k, v in env.items()})
    except config.SettingsError as exc:
        raise AssertionError(f"{where}: settings do not load: {exc}") from exc
