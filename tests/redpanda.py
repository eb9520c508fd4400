"""A Redpanda broker in Docker for the tests, through testcontainers (VAE_TEST_BROKER=redpanda).

The default test broker is the embedded Tansu (tests/conftest.py). Where a Docker engine
runs, `VAE_TEST_BROKER=redpanda make test` runs the same integration tests against
Redpanda, the broker of `make up`'s Compose stack, in the same version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

# The image of deploy/compose/docker-compose.yml (tests/deploy checks they agree).
REDPANDA_IMAGE = "docker.redpanda.com/redpandadata/redpanda:v26.1.13"
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class RedpandaBroker:
    """Where the tests reach a running Redpanda container."""

    bootstrap: str
    schema_registry_url: str


@contextmanager
def redpanda_broker(image: str = REDPANDA_IMAGE) -> Iterator[RedpandaBroker]:
    """Start Redpanda (dev-container mode, one core), yield its addresses, remove it."""
    from testcontainers.community.kafka import RedpandaContainer

    try:
        container = RedpandaContainer(image)
        container.start(timeout=START_TIMEOUT_S)
    except Exception as exc:  # docker.errors.DockerException and friends: no engine
        # Asked for Redpanda explicitly: never fall back silently to another broker.
        pytest.fail(
            f"VAE_TEST_BROKER=redpanda needs a running Docker engine ({type(exc).__name__}: "
            f"{exc}); unset it to use the embedded broker",
            pytrace=False,
        )
    try:
        yield RedpandaBroker(
            bootstrap=container.get_bootstrap_server(),
            schema_registry_url=container.get_schema_registry_address(),
        )
    finally:
        container.stop()
