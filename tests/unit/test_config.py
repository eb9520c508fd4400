"""Settings: defaults, environment, flags, clear errors."""

from __future__ import annotations

import argparse

import pytest

from pipeline import config


def parse(*flags: str, sections: tuple[str, ...] = config.SECTIONS) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, sections)
    return parser.parse_args(list(flags))


def test_defaults_suit_a_laptop() -> None:
    settings = config.load(environ={})
    assert settings.kafka.bootstrap == ""
    assert settings.gateway.port == 8080
    assert settings.topics.frames_partitions == 12
    assert settings.model.backend == "auto"


def test_environment_then_flags() -> None:
    env = {"VAE_GATEWAY_PORT": "9000", "VAE_WORKER_MAX_BATCH": "16", "VAE_TOPICS_CREATE": "false"}
    settings = config.load(parse("--gateway-port", "9100"), environ=env)
    assert settings.gateway.port == 9100  # flag wins
    assert settings.worker.max_batch == 16
    assert settings.topics.create is False


def test_named_variables_from_the_issue() -> None:
    env = {
        "VAE_KAFKA_BOOTSTRAP": "b1:9092,b2:9092",
        "VAE_SCHEMA_REGISTRY_URL": "http://registry:8081",
        "VAE_MODEL_DIR": "/models",
        "VAE_BACKEND": "onnxruntime",
    }
    settings = config.load(environ=env)
    assert settings.kafka.bootstrap == "b1:9092,b2:9092"
    assert settings.schema_registry.url == "http://registry:8081"
    assert settings.model.dir == "/models"
    assert settings.model.backend == "onnxruntime"


def test_boolean_flags() -> None:
    assert config.load(parse("--no-topics-create"), environ={}).topics.create is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VAE_GATEWAY_PORT": "eighty"}, "VAE_GATEWAY_PORT='eighty': expected int"),
        ({"VAE_BACKEND": "magic"}, "must be one of"),
        ({"VAE_TOPICS_CREATE": "maybe"}, "expected bool"),
        ({"VAE_WORKER_MAX_WAIT_MS": "-1"}, "must not be negative"),
        ({"VAE_WORKER_MAX_BATCH": "0"}, "at least 1"),
        ({"VAE_GATEWAY_MAX_FRAME_BYTES": "8000000"}, "VAE_TOPICS_MAX_MESSAGE_BYTES"),
        ({"VAE_TOPICS_DETECTIONS": "vae.frames"}, "must differ"),
        ({"VAE_WORKER_MAX_POLL_INTERVAL_MS": "5000"}, "at least VAE_WORKER_SESSION_TIMEOUT_MS"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(config.SettingsError, match=message.replace("(", r"\(")):
        config.load(environ=env)


def test_to_env_reproduces_the_settings() -> None:
    settings = config.load(environ={"VAE_WORKER_MAX_BATCH": "4", "VAE_TOPICS_CREATE": "0"})
    assert config.load(environ=config.to_env(settings)) == settings


def test_every_option_has_help_and_a_unique_env_name() -> None:
    options = config.options()
    assert all(o.help for o in options)
    names = [o.env for o in options]
    assert len(names) == len(set(names))
    assert all(n.startswith("VAE_") for n in names)
