"""The `vae` command: every sub-command, its help, its clear errors, and README coverage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import config
from pipeline.runtime import free_port
from pipeline.shell.cli import COMMANDS as COMMAND_TABLE
from pipeline.shell.cli import build_parser, main, markdown

REPO = Path(__file__).resolve().parents[2]
COMMANDS = (
    "up",
    "gateway",
    "worker",
    "broker",
    "topics",
    "replay",
    "models",
    "settings",
    "loadgen",
    "media",
    "cameras",
)


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
    declared = config.options() + [
        o
        for c in COMMAND_TABLE
        for cls, only in c.options
        for o in config.command_options(cls, only)
    ]
    missing = [o.env for o in declared if f"`{o.env}`" not in readme]
    assert not missing, f"README lacks {missing}: run `make docs`"
    assert markdown() in readme, "README's settings tables are stale: run `make docs`"


def test_every_command_option_is_declared_once() -> None:
    """A flag a command offers comes from one declaration (its env name is unique)."""
    for command in COMMAND_TABLE:
        infos = [o for cls, only in command.options for o in config.command_options(cls, only)]
        flags = [o.flag for o in infos] + [o.flag for o in config.options(command.sections)]
        assert len(flags) == len(set(flags)), command.name
    every = {
        o.env: o for c in COMMAND_TABLE for cls, _ in c.options for o in config.command_options(cls)
    }
    assert all(env.startswith("VAE_") for env in every)
    assert not set(every) & {o.env for o in config.options()}


def test_command_options_come_from_flags_then_environment(tmp_path: Path) -> None:
    from loadgen.options import LoadgenOptions

    parser = build_parser()
    args = parser.parse_args(["loadgen", "--streams", "7"])
    env = {"VAE_LOADGEN_STREAMS": "5", "VAE_LOADGEN_FPS": "2.5", "VAE_LOADGEN_LIVE": "false"}
    options = config.load_options(LoadgenOptions, args, env)
    assert (options.streams, options.fps, options.live) == (7, 2.5, False)
    assert config.load_options(LoadgenOptions, None, config.to_env(options)) == options


def test_a_child_gets_a_command_s_options_through_to_env() -> None:
    from connectors.replay import ReplayOptions

    replay = ReplayOptions(source="clip.avi", streams=3, fps=2.0)
    again = config.load_options(ReplayOptions, None, config.to_env(replay))
    assert again == replay


def test_a_missing_positional_names_itself() -> None:
    result = vae("replay", env={"PATH": "/usr/bin"})
    assert result.returncode == 2
    assert "SOURCE is required" in result.stderr


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
