"""VAE_TEST_BROKER=redpanda: the tests' Redpanda container (testcontainers) either runs or
fails loudly; it never falls back to another broker in silence.
"""

from __future__ import annotations

import pytest

from tests.redpanda import REDPANDA_IMAGE, redpanda_broker


def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.mark.skipif(
    docker_engine_answers(), reason="a Docker engine runs here: the failure path cannot be shown"
)
def test_without_a_docker_engine_asking_for_redpanda_fails_with_the_reason() -> None:
    with (
        pytest.raises(
            pytest.fail.Exception, match="VAE_TEST_BROKER=redpanda needs a running Docker engine"
        ),
        redpanda_broker(),
    ):
        pass


@pytest.mark.skipif(
    not docker_engine_answers(), reason="no Docker engine here: Redpanda was not started"
)
def test_with_a_docker_engine_redpanda_answers_kafka_metadata() -> None:
    from pipeline.config import KafkaSettings
    from pipeline.kafka.admin import admin_client, topic_partitions

    with redpanda_broker() as redpanda:
        assert (
            topic_partitions(admin_client(KafkaSettings(bootstrap=redpanda.bootstrap)), timeout=30)
            is not None
        )


def test_the_image_is_pinned() -> None:
    assert REDPANDA_IMAGE.rsplit(":", 1)[1].startswith("v") and "latest" not in REDPANDA_IMAGE
