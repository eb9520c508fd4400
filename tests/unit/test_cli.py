"""The `vae` command: every sub-command, its help, its clear errors, and README coverage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import config
from pipeline.runtime import free_port
from pipeline.shell.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("up", "gateway", "worker", "broker", "topics", "replay", "models", "settings")


def vae(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def test_every_command_the_issue_names_exists() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main([command, "--help"])
    assert exit_code.value.code == 0
    assert "usage: vae " + command in capsys.readouterr().out


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [o.env for o in config.options() if f"`{o.env}`" not in readme]
    assert not missing, f"README lacks {missing}: run `make docs`"
    assert config.markdown_table() in readme, "README's settings table is stale: run `make docs`"


def test_bad_setting_is_one_clear_line() -> None:
    result = vae("settings", env={"PATH": "/usr/bin", "VAE_GATEWAY_PORT": "http"})
    assert result.returncode == 2
    assert "VAE_GATEWAY_PORT='http': expected int" in result.stderr


def test_settings_hides_secrets() -> None:
    result = vae("settings", env={"PATH": "/usr/bin", "VAE_KAFKA_SASL_PASSWORD": "hunter2"})
    assert result.returncode == 0
    assert "VAE_KAFKA_SASL_PASSWORD=***" in result.stdout and "hunter2" not in result.stdout


def test_unreachable_broker_is_one_clear_error() -> None:
    port = free_port()
    result = vae(
        "gateway",
        "--wait",
        "2",
        env={"PATH": "/usr/bin", "VAE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"},
    )
    assert result.returncode == 2
    assert f"no Kafka broker at 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_of_a_missing_file() -> None:
    result = vae("replay", "/no/such/clip.mp4")
    assert result.returncode == 2
    assert "no such file or folder: /no/such/clip.mp4" in result.stderr
