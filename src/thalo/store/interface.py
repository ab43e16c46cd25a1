"""The ``MessageStore`` protocol: Message DB's functions, async, identical on every backend.

Method names and defaults follow Message DB's SQL functions (``write_message``,
``get_stream_messages``, ``get_category_messages``, ``get_last_stream_message``,
``stream_version``), so its documentation describes thalo's store too.
"""

from __future__ import annotations

__all__ = ["Dialect", "MessageStore", "SqlTransaction", "StoreBase"]

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from thalo.core import Message, NewMessage, RawMessage

Dialect = Literal["sqlite", "postgresql"]


class SqlTransaction(Protocol):
    """One open transaction on the store's database, for thalo's own tables.

    ``execute`` takes psycopg-style ``%s`` placeholders on both dialects (write
    ``%%`` for a literal ``%``) and returns the rows the statement produced (``[]``
    when it produces none). Unqualified table names resolve to thalo's own
    schema: ``thalo`` on PostgreSQL, the store file itself on SQLite.
    """

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@runtime_checkable
class MessageStore(Protocol):
    """An async message store with Message DB's semantics.

    Stream names are validated (``InvalidStreamName``); messages must carry a
    JSON-object ``data`` and JSON-object-or-None ``metadata`` (``InvalidMessage``);
    a version mismatch raises ``WrongExpectedVersion``; out-of-domain read
    arguments raise ``InvalidStoreArgument`` with Message DB's own error text;
    a lost connection raises ``StoreUnavailable``.
    """

    @property
    def url(self) -> str:
        """The URL the store was opened with, password redacted."""
        ...

    @property
    def dialect(self) -> Dialect: ...

    async def write_message(
        self, stream_name: str, message: NewMessage, expected_version: int | None = None
    ) -> int:
        """Append one message; return its position (``expected_version`` -1: no stream yet)."""
        ...

    async def write_messages(
        self,
        stream_name: str,
        messages: Sequence[NewMessage],
        expected_version: int | None = None,
    ) -> int:
        """Append several messages to one stream atomically; return the last one's position."""
        ...

    async def get_stream_messages(
        self,
        stream_name: str,
        position: int = 0,
        batch_size: int = 1000,
        condition: str | None = None,
    ) -> list[Message]:
        """Messages of one stream from ``position`` on (``batch_size`` -1: all)."""
        ...

    async def get_stream_raw(
        self, stream_name: str, position: int = 0, batch_size: int = 1000
    ) -> list[RawMessage]:
        """:meth:`get_stream_messages` for replays: data and metadata left as JSON text."""
        ...

    async def get_category_messages(
        self,
        category: str,
        position: int = 1,
        batch_size: int = 1000,
        correlation: str | None = None,
        consumer_group_member: int | None = None,
        consumer_group_size: int | None = None,
        condition: str | None = None,
    ) -> list[Message]:
        """A category's messages from global ``position`` on (optionally one member's share)."""
        ...

    async def get_last_stream_message(
        self, stream_name: str, type: str | None = None
    ) -> Message | None:
        """The stream's last message (of ``type`` when given), or None."""
        ...

    async def stream_version(self, stream_name: str) -> int | None:
        """Position of the stream's last message, or None when the stream does not exist."""
        ...

    async def init(self) -> list[str]:
        """Create thalo's own schema if missing (idempotent); return what was done."""
        ...

    def transaction(
        self, *, read_only: bool = False
    ) -> AbstractAsyncContextManager[SqlTransaction]:
        """A transaction for thalo's own tables; commits on normal exit, rolls back on error.

        ``read_only`` reads without taking a write lock (SQLite: on the reader
        connection, so writers need not wait; PostgreSQL: ``READ ONLY``); writing
        in it raises ``StoreError``.
        """
        ...

    async def close(self) -> None:
        """Finish pending writes and release connections; idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class StoreBase(ABC):
    """What every backend shares: ``write_message`` is a one-message ``write_messages``,
    and ``async with store`` closes it."""

    @abstractmethod
    async def write_messages(
        self,
        stream_name: str,
        messages: Sequence[NewMessage],
        expected_version: int | None = None,
    ) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def write_message(
        self, stream_name: str, message: NewMessage, expected_version: int | None = None
    ) -> int:
        return await self.write_messages(stream_name, [message], expected_version)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
