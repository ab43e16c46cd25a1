"""Fixtures for runtime and registry tests: stores (each backend) with the test modules published.

The built components and template stores come from tests/components.py.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from helpers import fresh_database

from thalo.runtime import Runtime
from thalo.store import MessageStore, open_store
from thalo.testing.pytest_plugin import url_for


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def published_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store on each backend where the test modules are published.

    SQLite: a private copy of a template file. Message DB: the session's shared
    database, so tests there use unique entity ids (``unique()``).
    """
    if request.param == "messagedb":
        url: str = request.getfixturevalue("published_postgres")
        return url
    template: Path = request.getfixturevalue("published_sqlite")
    target = tmp_path / "store.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target.as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store of its own where nothing is published yet."""
    if request.param == "sqlite":
        yield url_for("sqlite", tmp_path, request)
    else:
        with fresh_database(request.getfixturevalue("postgres_url")) as url:
            yield url


@pytest_asyncio.fixture
async def rt_store(published_store_url: str) -> AsyncIterator[MessageStore]:
    async with open_store(published_store_url) as store:
        yield store


@pytest_asyncio.fixture
async def runtime(rt_store: MessageStore) -> AsyncIterator[Runtime]:
    """A runtime (snapshots every 5 events) over a store with the test modules published."""
    async with Runtime(rt_store, snapshot_every=5) as rt:
        yield rt
