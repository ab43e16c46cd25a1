"""Fixtures of the store's own tests."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from thalo.testing.postgres import with_database


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database (no Message DB) on the test server, dropped afterwards."""
    name = f"thalo_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield with_database(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")
