"""The database a read model writes to, as transactions with ``%s`` placeholders on both dialects.

:func:`open_read_model_database` gives one of:

- the store's own SQLite file (or another SQLite file) through a connection of
  the projection's own, used directly on the event loop: a statement costs
  a few microseconds instead of a round trip to the store's writer thread,
  which is what lets a read model apply tens of thousands of events a second.
  ``BEGIN IMMEDIATE`` is tried without waiting (busy timeout 0) and retried
  with ``asyncio.sleep`` while another connection writes, so the loop never
  blocks on a lock; it blocks only for the statements and the commit's fsync.
- the store's own PostgreSQL database: ``store.transaction()`` (the ``thalo``
  schema first on the search path);
- another PostgreSQL database: a psycopg connection of its own.

All of them satisfy :class:`thalo.store.SqlTransaction`.
"""

from __future__ import annotations

__all__ = ["ReadModelDatabase", "open_read_model_database"]

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from thalo.errors import StoreError
from thalo.store import Dialect, MessageStore, SqlTransaction
from thalo.store.sql import to_qmark
from thalo.store.url import parse_sqlite_url

_qmark = functools.lru_cache(maxsize=256)(to_qmark)


class ReadModelDatabase(Protocol):
    """Where a read model's rows and position live."""

    @property
    def dialect(self) -> Dialect: ...

    def transaction(self) -> AbstractAsyncContextManager[SqlTransaction]:
        """Commits on normal exit, rolls back on an exception."""
        ...

    async def close(self) -> None: ...


class _SqliteTransaction:
    """Statements on the owning connection, run inline (microseconds each)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = self._connection.execute(
                _qmark(sql), tuple(params)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQL failed: {exc}") from exc
        return rows


class SqliteDatabase:
    """A read model's SQLite file (the store's own or another), on a connection of its own."""

    def __init__(self, path: Path, synchronous: str = "full") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA busy_timeout=0")
        if self._connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._connection.execute("PRAGMA busy_timeout=30000")
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA busy_timeout=0")
        self._connection.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._lock = asyncio.Lock()

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    async def _begin(self) -> None:
        delay = 0.0005
        while True:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if "locked" not in text and "busy" not in text:
                    raise StoreError(f"SQL failed: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        async with self._lock:  # one transaction at a time on this connection
            await self._begin()
            try:
                yield _SqliteTransaction(self._connection)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise StoreError(f"SQL failed: COMMIT: {exc}") from exc

    async def close(self) -> None:
        self._connection.close()


class StoreDatabase:
    """The store's own database through ``store.transaction()`` (PostgreSQL, ``:memory:``)."""

    def __init__(self, store: MessageStore) -> None:
        self._store = store

    @property
    def dialect(self) -> Dialect:
        return self._store.dialect

    def transaction(self) -> AbstractAsyncContextManager[SqlTransaction]:
        return self._store.transaction()

    async def close(self) -> None:
        return None


class _PgTransaction:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return "postgresql"

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            cursor = await self._connection.execute(sql, tuple(params))
            rows: list[tuple[Any, ...]] = (
                await cursor.fetchall() if cursor.description is not None else []
            )
        except psycopg.Error as exc:
            raise StoreError(f"SQL failed: {exc}") from exc
        return rows


class PostgresDatabase:
    """Another PostgreSQL database, on one psycopg connection of the read model's own."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: Any = None
        self._lock = asyncio.Lock()

    @property
    def dialect(self) -> Dialect:
        return "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        import psycopg

        async with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            async with self._connection.transaction():
                yield _PgTransaction(self._connection)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def open_read_model_database(store: MessageStore, url: str | None) -> ReadModelDatabase:
    """The database named by ``url``, or the store's own when ``url`` is None."""
    if url is None:
        if store.dialect == "sqlite":
            location = parse_sqlite_url(store.url)
            if location.path is not None:
                return SqliteDatabase(location.path, location.synchronous)
        return StoreDatabase(store)
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        location = parse_sqlite_url(url)
        if location.path is None:
            raise ValueError("a read model's database cannot be :memory:")
        return SqliteDatabase(location.path, location.synchronous)
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url)
    raise ValueError(f"read model database {url!r}: use sqlite:///file.db or postgresql://…")
