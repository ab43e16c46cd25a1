"""Fixtures for the CLI tests: a store of each backend that no other test sees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def cli_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    # A database of its own: these tests publish versions other tests must not see.
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url
