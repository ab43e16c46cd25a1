"""pytest fixtures for message stores.

Enable with ``pytest_plugins = ["thalo.testing.pytest_plugin"]``.

- ``postgres_url`` (session): a PostgreSQL database with Message DB installed
  (``THALO_TEST_POSTGRES_URL``, else a throwaway embedded server). Fails the
  test with the reason when neither is possible; never skips.
- ``store_url`` : one URL per backend — ``sqlite`` (a file in ``tmp_path``),
  ``memory`` and ``messagedb`` (``postgres_url``); parametrized, so a test that
  asks for it runs on all three. ``messagedb`` carries the ``postgres`` marker.
- ``store``: an open store on ``store_url`` (``sql_condition=True``), closed after.
- ``store_factory``: ``await store_factory("sqlite" | "memory" | "messagedb")``
  opens more stores, all closed after the test.
"""

from __future__ import annotations

__all__ = [
    "BACKENDS",
    "postgres_url",
    "store",
    "store_factory",
    "store_url",
    "url_for",
]

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from thalo.store import MessageStore, open_store
from thalo.testing.postgres import MessageDbUnavailable, message_db_url

BACKENDS = ("sqlite", "memory", "messagedb")

_POSTGRES: dict[str, str | BaseException] = {}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database with Message DB installed, shared by the session (tests use unique names)."""
    try:
        with message_db_url() as url:
            yield url
    except MessageDbUnavailable as exc:
        pytest.fail(f"PostgreSQL is needed for this test and none is available: {exc}")


def url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The store URL for ``backend`` (``messagedb`` pulls in ``postgres_url``)."""
    if backend == "sqlite":
        return f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    if backend == "memory":
        return "sqlite://:memory:"
    if backend == "messagedb":
        url: str = request.getfixturevalue("postgres_url")
        return url
    raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


@pytest.fixture(
    params=[
        "sqlite",
        "memory",
        pytest.param("messagedb", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_for(request.param, tmp_path, request)


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[MessageStore]:
    async with open_store(store_url, sql_condition=True) as opened:
        yield opened


@pytest_asyncio.fixture
async def store_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Awaitable[MessageStore]]]:
    opened: list[MessageStore] = []

    async def make(backend: str = "sqlite", *, sql_condition: bool = False) -> MessageStore:
        url = url_for(backend, tmp_path, request)
        store = await open_store(url, sql_condition=sql_condition)
        opened.append(store)
        return store

    yield make
    for store in reversed(opened):
        await store.close()
