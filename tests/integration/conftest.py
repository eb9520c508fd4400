"""Fixtures of the sink tests: a PostgreSQL database and a Mosquitto of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sink_tools import POSTGRES_ADMIN, Mosquitto


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """A database of its own (vae_test_<random>) on the local PostgreSQL, dropped after."""
    import psycopg
    from psycopg import sql

    name = f"vae_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {POSTGRES_ADMIN} (VAE_TEST_POSTGRES): {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield psycopg.conninfo.make_conninfo(POSTGRES_ADMIN, dbname=name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.stop()
