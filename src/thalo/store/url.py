"""``open_store(url)``: pick the backend from the URL and open it.

- ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` (SQLAlchemy's
  convention), optional ``?synchronous=full|normal``;
- ``sqlite://:memory:`` (also ``sqlite:///:memory:``): a private in-memory store;
- ``postgresql://…`` or ``postgres://…``: Message DB, any libpq URL.
"""

from __future__ import annotations

__all__ = ["StoreOpener", "open_store", "parse_sqlite_url", "redact_url"]

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from thalo.errors import StoreURLInvalid
from thalo.store.interface import MessageStore

_EXAMPLES = "sqlite:///path/to/file.db, sqlite://:memory: or postgresql://user@host:5432/database"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


@dataclass(frozen=True, slots=True)
class SqliteLocation:
    """Where a SQLite store lives (``path`` None: in memory) and how it syncs."""

    path: Path | None
    synchronous: str


def parse_sqlite_url(url: str) -> SqliteLocation:
    """Parse a ``sqlite:`` URL; raise StoreURLInvalid with the accepted forms."""
    rest = url[len("sqlite:") :]
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    synchronous = options.pop("synchronous", "full").lower()
    if synchronous not in ("full", "normal"):
        raise StoreURLInvalid(
            f"invalid store URL {url!r}: synchronous must be 'full' or 'normal', "
            f"got {synchronous!r}"
        )
    if options:
        raise StoreURLInvalid(
            f"invalid store URL {url!r}: unknown option(s) {', '.join(sorted(options))} "
            "(a sqlite URL accepts only ?synchronous=full|normal)"
        )
    if rest in ("//:memory:", "///:memory:"):
        return SqliteLocation(None, synchronous)
    if not rest.startswith("///") or rest == "///":
        raise StoreURLInvalid(
            f"invalid store URL {url!r}: a SQLite URL is sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite://:memory:"
        )
    return SqliteLocation(Path(rest[3:]), synchronous)


async def _open(url: str, sql_condition: bool) -> MessageStore:
    if not isinstance(url, str) or not url.strip():
        raise StoreURLInvalid(
            f"a store URL must be a non-empty string, got {url!r}; use {_EXAMPLES}"
        )
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from thalo.store.sqlite import SqliteStore

        location = parse_sqlite_url(url)
        store: Any = await SqliteStore.open(
            url,
            location.path,
            synchronous="normal" if location.synchronous == "normal" else "full",
            sql_condition=sql_condition,
        )
        return cast(MessageStore, store)
    if scheme in ("postgresql", "postgres"):
        from thalo.store.messagedb import MessageDbStore

        return await MessageDbStore.open(url, sql_condition=sql_condition)
    shown = redact_url(url)
    reason = f"unknown scheme {scheme!r}" if scheme else "no scheme"
    raise StoreURLInvalid(f"invalid store URL {shown!r}: {reason}; use {_EXAMPLES}")


class StoreOpener:
    """What ``open_store`` returns: await it, or use it as ``async with``."""

    def __init__(self, url: str, sql_condition: bool) -> None:
        self._url = url
        self._sql_condition = sql_condition
        self._store: MessageStore | None = None

    def __await__(self) -> Generator[Any, None, MessageStore]:
        return _open(self._url, self._sql_condition).__await__()

    async def __aenter__(self) -> MessageStore:
        self._store = await _open(self._url, self._sql_condition)
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()


def open_store(url: str, *, sql_condition: bool = False) -> StoreOpener:
    """Open the message store named by ``url``: ``store = await open_store(url)`` or ``async with``.

    ``sql_condition=True`` allows the ``condition`` argument of reads (a SQL
    fragment, as in Message DB; only for trusted callers). Raises
    StoreURLInvalid (unknown scheme, malformed URL), StoreUnavailable (cannot
    connect or open), StoreNotInitialized (Message DB not installed).
    """
    return StoreOpener(url, sql_condition)
