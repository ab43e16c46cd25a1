"""Fixtures for the read side: a store URL per backend, bulk writes, reading tables back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from thalo.core import NewMessage
from thalo.store import MessageStore, open_store


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An SQLite file of the test's own, or the shared Message DB (isolate by unique names)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def write_events(
    store: MessageStore, category: str, count: int, *, entities: int = 10, batch: int = 1000
) -> None:
    """``count`` events ``Happened {"n": i}`` over ``entities`` streams, in big atomic writes."""
    written = 0
    while written < count:
        size = min(batch, count - written)
        entity = (written // batch) % entities
        await store.write_messages(
            f"{category}-e{entity}",
            [NewMessage("Happened", {"n": written + i}) for i in range(size)],
        )
        written += size


async def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the store's own database (thalo's schema first on PostgreSQL).

    SQLite is read with a bare read-only connection: opening a store checks its
    schema under the write lock, which a running read model holds most of the time.
    """
    if url.startswith("sqlite:///"):
        import sqlite3

        from thalo.store.sql import to_qmark

        connection = sqlite3.connect(f"file:{url[len('sqlite:///') :]}?mode=ro", uri=True)
        try:
            return connection.execute(to_qmark(sql), params).fetchall()
        finally:
            connection.close()
    async with open_store(url) as store, store.transaction(read_only=True) as tx:
        return await tx.execute(sql, params)
