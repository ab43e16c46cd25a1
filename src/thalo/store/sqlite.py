"""The embedded message store: one SQLite file (WAL), Message DB's semantics.

- **Writes** go to one connection thread per store. It commits every write
  queued at that moment in one ``BEGIN IMMEDIATE`` transaction (group commit);
  each caller's expected-version check runs in order inside it, and a caller
  whose check fails gets ``WrongExpectedVersion`` while the others commit.
  ``BEGIN IMMEDIATE`` takes SQLite's write lock before the check, so writers in
  other processes are serialized too: two processes can never both win the
  same expected version. A write alone in the queue is one statement that
  checks, inserts and returns the position (a write statement holds the lock
  from its first step, so it is as safe).
- **A writer alone runs inline.** When a write is the only one in progress in
  the process and the writer thread is idle, the event loop runs it itself, on
  a third connection that never waits for SQLite's lock: two thread hand-offs
  cost more than the insert (each wake-up ~50–65 µs against ~200 µs for an
  insert and its fsync on the reference machine). If another process holds the
  lock, or a second writer arrives, writes go to the thread as above; so the
  loop blocks for one insert and fsync only when there was nothing else to write.
- **Global positions** are the table's rowid, assigned ``max + 1`` inside the
  write lock: increasing and gap-free (a rolled-back write leaves no hole).
- **Reads** use a second connection on its own thread (WAL readers never wait
  for the writer), except for ``:memory:``, where one connection does all.
- **Durability**: ``synchronous=FULL`` by default, so a write acknowledged is
  on disk even after a power cut; group commit amortizes the fsync across
  concurrent writers. ``?synchronous=normal`` in the URL trades the last
  transactions on power loss (never on a crash of the process) for speed.
"""

from __future__ import annotations

__all__ = ["SqliteStore"]

import asyncio
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from thalo.core import Message, NewMessage, RawMessage, cardinal_id, category, validate_stream_name
from thalo.errors import (
    DuplicateMessageId,
    InvalidStoreArgument,
    StoreError,
    StoreNotInitialized,
    StoreUnavailable,
    ThaloError,
    WrongExpectedVersion,
)
from thalo.store.arguments import (
    CONDITION_NOT_ACTIVATED,
    check_batch_size,
    check_category_read,
    check_expected_version,
    check_position,
    check_stream_read,
    check_type,
)
from thalo.store.encoding import (
    EncodedMessage,
    encode_messages,
    messages_from_rows,
    raw_messages_from_rows,
)
from thalo.store.interface import Dialect, SqlTransaction, StoreBase
from thalo.store.partition import hash_64
from thalo.store.sql import CONDITION_HINT, to_qmark
from thalo.store.sqlite_thread import (
    Call,
    ConnectionThread,
    Job,
    Session,
    SessionRequest,
)

Synchronous = Literal["full", "normal"]
_Optional = sqlite3.Connection | None
_M = TypeVar("_M")

SCHEMA_VERSION = 1
_YIELD_EVERY = 0.002  # seconds of back-to-back inline writes before yielding to the loop
BUSY_TIMEOUT_SECONDS = 30.0

# Message DB's columns, plus three derived at write time so that category reads,
# correlation and consumer groups are index- or column-lookups.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  global_position INTEGER PRIMARY KEY,
  position INTEGER NOT NULL,
  time TEXT NOT NULL,
  stream_name TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  metadata TEXT,
  id TEXT NOT NULL,
  category TEXT NOT NULL,
  cardinal_hash INTEGER,
  correlation_category TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages (id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_stream ON messages (stream_name, position);
CREATE INDEX IF NOT EXISTS messages_category ON messages (category, global_position);
"""

_COLUMNS = "id, stream_name, type, position, global_position, data, metadata, time"
_RAW_SQL = (
    "SELECT position, type, data, metadata, time FROM messages "
    "WHERE stream_name = ? AND position >= ? ORDER BY position LIMIT ?"
)
_VERSION_SQL = "SELECT max(position) FROM messages WHERE stream_name = ?"
_INSERT_SQL = (
    "INSERT INTO messages (position, time, stream_name, type, data, metadata, id, "
    "category, cardinal_hash, correlation_category) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# One message, expected version checked and position assigned in the same statement:
# a write statement holds SQLite's write lock from its first step, so even without
# an explicit transaction no other connection or process can write in between.
_CHECKED_INSERT_SQL = (
    "INSERT INTO messages (position, time, stream_name, type, data, metadata, id, "
    "category, cardinal_hash, correlation_category) "
    "SELECT (SELECT coalesce(max(position), -1) + 1 FROM messages WHERE stream_name = ?1), "
    "?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9 "
    "WHERE ?10 IS NULL "
    "OR (SELECT coalesce(max(position), -1) FROM messages WHERE stream_name = ?1) = ?10 "
    # No FROM clause: a SELECT from the table being inserted into would be
    # materialized first (measured 20x slower).
    "RETURNING position"
)

# Set while a task is inside SqliteStore.transaction(): the store and the thread
# that transaction holds (the writer, or the reader for a read-only one), so a
# call from the same task that needs that thread would wait for itself.
_OPEN_TRANSACTION: ContextVar[tuple[SqliteStore, ConnectionThread] | None] = ContextVar(
    "thalo_sqlite_tx", default=None
)


@functools.lru_cache(maxsize=4096)
def _stream_columns(stream_name: str) -> tuple[str, int | None]:
    """A stream's ``category`` and ``cardinal_hash`` (cached: streams are written often)."""
    ident = cardinal_id(stream_name)
    return category(stream_name), None if ident is None else hash_64(ident)


class _Write(Job):
    """One caller's write. Its columns are computed here, on the caller's side, so the
    writer thread (the bottleneck under concurrency) only runs SQL."""

    __slots__ = ("expected_version", "ids", "rows", "stream_name")

    def __init__(
        self, stream_name: str, encoded: list[EncodedMessage], expected_version: int | None
    ) -> None:
        # No loop or future yet: a write committed inline never needs them (queue() sets them).
        self.stream_name = stream_name
        self.expected_version = expected_version
        self.ids = [m.id for m in encoded]
        cat, cardinal_hash = _stream_columns(stream_name)
        # (type, data, metadata, id, category, cardinal_hash, correlation_category)
        self.rows = [
            (
                m.type,
                m.data,
                m.metadata,
                m.id,
                cat,
                cardinal_hash,
                _correlation_category(m.metadata_value),
            )
            for m in encoded
        ]

    def queue(self) -> _Write:
        """Ready to hand to the writer thread: give it the caller's loop and a future."""
        self.loop = loop = asyncio.get_running_loop()
        self.future = loop.create_future()
        return self


# The last whole second (UTC) and its text, replaced as one tuple: writer threads
# of several stores may call _now at once.
_second: tuple[int, str] = (-1, "")


def _now() -> str:
    """Message DB's time format: UTC, without zone, microseconds.

    Date and time of day are formatted once per second: formatting a datetime
    for every write cost more than the rest of the writer's Python.
    """
    global _second
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _second
    if cached[0] != seconds:
        cached = _second = (seconds, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)))
    return f"{cached[1]}.{micros:06d}"


def _correlation_category(metadata: dict[str, Any] | None) -> str | None:
    """``category(metadata->>'correlationStreamName')`` as PostgreSQL evaluates it."""
    if metadata is None:
        return None
    value = metadata.get("correlationStreamName")
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return category(text)


def _translate(exc: sqlite3.Error, doing: str) -> StoreError:
    """A foreign sqlite3 error as a store error a person can act on."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return StoreUnavailable(
            f"could not {doing}: the SQLite file stayed locked by another process for "
            f"{BUSY_TIMEOUT_SECONDS:.0f} s ({text})"
        )
    return StoreUnavailable(f"could not {doing}: SQLite failed: {text}")


def _insert_one(connection: sqlite3.Connection, job: _Write, now: str) -> int:
    """One message in one statement (see _CHECKED_INSERT_SQL); return its position."""
    stream, expected = job.stream_name, job.expected_version
    params = (stream, now, *job.rows[0], expected)
    while True:
        try:
            inserted = connection.execute(_CHECKED_INSERT_SQL, params).fetchall()
        except sqlite3.IntegrityError as exc:
            raise DuplicateMessageId(job.ids[0], stream) from exc
        if inserted:
            return int(inserted[0][0])
        (version,) = connection.execute(_VERSION_SQL, (stream,)).fetchone()
        version = -1 if version is None else version
        if version != expected or connection.in_transaction:
            assert expected is not None
            raise WrongExpectedVersion(stream, expected, version)
        # Outside a transaction another process wrote between the two statements
        # and the stream now happens to be at the expected version: try again.


def _insert(connection: sqlite3.Connection, job: _Write, now: str) -> int:
    """Check the expected version and insert the job's messages; return the last position."""
    if len(job.rows) == 1:
        return _insert_one(connection, job, now)
    stream = job.stream_name
    (version,) = connection.execute(_VERSION_SQL, (stream,)).fetchone()
    version = -1 if version is None else version
    if job.expected_version is not None and job.expected_version != version:
        raise WrongExpectedVersion(stream, job.expected_version, version)
    rows = [(version + 1 + offset, now, stream, *row) for offset, row in enumerate(job.rows)]
    connection.execute("SAVEPOINT thalo_write")
    try:
        connection.executemany(_INSERT_SQL, rows)
    except sqlite3.IntegrityError as exc:
        connection.execute("ROLLBACK TO thalo_write")
        connection.execute("RELEASE thalo_write")
        ids = job.ids
        marks = ", ".join("?" * len(ids))
        found = {
            r[0] for r in connection.execute(f"SELECT id FROM messages WHERE id IN ({marks})", ids)
        }
        duplicate = next((i for i in ids if i in found), ids[0])
        raise DuplicateMessageId(duplicate, stream) from exc
    connection.execute("RELEASE thalo_write")
    return version + len(rows)


def _write_now(connection: sqlite3.Connection, job: _Write) -> int | None:
    """Commit ``job`` on ``connection`` (which must not wait for locks); its last position.

    None when another connection holds SQLite's write lock: nothing was written,
    and the caller hands the job to the writer thread, which waits.
    """
    try:
        if len(job.rows) == 1:
            return _insert_one(connection, job, _now())
        connection.execute("BEGIN IMMEDIATE")
        try:
            position = _insert(connection, job, _now())
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return position
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return None
        raise _translate(exc, "write messages") from exc
    except sqlite3.Error as exc:
        raise _translate(exc, "write messages") from exc


def _write_batch(
    connection: sqlite3.Connection, jobs: list[_Write]
) -> list[tuple[Job, Any, BaseException | None]]:
    """Group commit: every job in one transaction; a job's own failure fails only that job."""
    if len(jobs) == 1 and len(jobs[0].rows) == 1:
        # Alone: the single statement is its own transaction.
        job = jobs[0]
        try:
            return [(job, _insert_one(connection, job, _now()), None)]
        except ThaloError as exc:
            return [(job, None, exc)]
        except sqlite3.Error as exc:
            return [(job, None, _translate(exc, "write a message"))]
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        error = _translate(exc, "start a write transaction")
        return [(job, None, error) for job in jobs]
    now = _now()
    outcomes: list[tuple[Job, Any, BaseException | None]] = []
    try:
        for job in jobs:
            try:
                outcomes.append((job, _insert(connection, job, now), None))
            except ThaloError as exc:
                outcomes.append((job, None, exc))
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        error = _translate(exc, "write messages")
        return [(job, None, error) for job in jobs]
    return outcomes


def _serve_session(connection: sqlite3.Connection, session: Session) -> None:
    """Run one caller's own-tables transaction on this thread's connection to its end.

    A read-only session takes no write lock (``BEGIN``, one snapshot) and runs with
    ``query_only`` on, so a write in it fails (the reader connection always has it;
    ``:memory:``'s single connection gets it for the session).
    """
    if not session.read_only:
        _run_session(connection, session, "BEGIN IMMEDIATE")
        return
    (query_only,) = connection.execute("PRAGMA query_only").fetchone()
    connection.execute("PRAGMA query_only=1")
    try:
        _run_session(connection, session, "BEGIN")
    finally:
        connection.execute(f"PRAGMA query_only={int(query_only)}")


def _run_session(connection: sqlite3.Connection, session: Session, begin: str) -> None:
    from thalo.store.sqlite_thread import settle

    try:
        connection.execute(begin)
    except sqlite3.Error as exc:
        settle([(session, None, _translate(exc, "start a transaction"))])
        return
    settle([(session, None, None)])
    while True:
        request = session.requests.get()
        try:
            if request.kind == "execute":
                rows = connection.execute(request.sql, request.params).fetchall()
                settle([(request, rows, None)])
                continue
            if connection.in_transaction:
                connection.execute("COMMIT" if request.kind == "commit" else "ROLLBACK")
            settle([(request, None, None)])
            return
        except sqlite3.Error as exc:
            if request.kind != "execute":
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                settle([(request, None, _translate(exc, "commit a transaction"))])
                return
            settle([(request, None, StoreError(f"SQL failed: {exc} (in: {request.sql})"))])


class _SqliteTransaction:
    """The SqlTransaction of a SQLite store: statements run on the thread that holds it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    async def _send(self, request: SessionRequest) -> Any:
        self._session.requests.put(request)
        return await request.future

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._send(
            SessionRequest("execute", to_qmark(sql), tuple(params))
        )
        return rows


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out another process doing the same on a new file.

    Changing the journal mode can fail with "database is locked" without
    SQLite's busy handler being consulted, so wait here.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _connect(
    target: str,
    *,
    uri: bool,
    synchronous: Synchronous,
    read_only: bool,
    timeout: float = BUSY_TIMEOUT_SECONDS,
) -> sqlite3.Connection:
    connection = sqlite3.connect(
        target,
        uri=uri,
        timeout=timeout,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # each connection is used by one thread at a time
        cached_statements=256,
    )
    _enable_wal(connection)
    connection.execute(f"PRAGMA synchronous={synchronous.upper()}")
    if read_only:
        connection.execute("PRAGMA query_only=1")
    return connection


def _create_schema(connection: sqlite3.Connection, location: str) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreNotInitialized(
                f"{location} was created by a newer thalo (store schema {version}, this thalo "
                f"knows {SCHEMA_VERSION}); upgrade thalo to open it"
            )
        if version == 0:
            foreign = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'"
            ).fetchone()
            if foreign is not None:
                raise StoreNotInitialized(
                    f"{location} already has a 'messages' table that thalo did not create; "
                    "use another file for the message store"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class SqliteStore(StoreBase):
    """The embedded backend. Open it with ``thalo.store.open_store("sqlite:///file.db")``."""

    def __init__(
        self,
        url: str,
        writer: ConnectionThread,
        reader: ConnectionThread,
        inline: sqlite3.Connection | None,
        *,
        sql_condition: bool,
    ) -> None:
        self._url = url
        self._writer = writer
        self._reader = reader
        self._inline = inline  # the loop's own writer connection (lock timeout 0)
        self._queued = 0  # writes handed to the writer thread and not yet answered
        self._last_writer: asyncio.Task[Any] | None = None  # the task of the last write
        self._yielded = 0.0  # loop time an inline write last yielded
        self._sql_condition = sql_condition
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        path: Path | None,
        *,
        synchronous: Synchronous = "full",
        sql_condition: bool = False,
    ) -> SqliteStore:
        """Open (creating file and schema if missing) the store at ``path``; None: in memory."""
        location = ":memory:" if path is None else str(path)

        def connect() -> tuple[sqlite3.Connection, _Optional, _Optional]:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            writer = _connect(location, uri=False, synchronous=synchronous, read_only=False)
            opened = [writer]
            try:
                _create_schema(writer, location)
                if path is None:  # one connection sees the in-memory database
                    return writer, None, None
                reader = _connect(location, uri=False, synchronous=synchronous, read_only=True)
                opened.append(reader)
                inline = _connect(
                    location, uri=False, synchronous=synchronous, read_only=False, timeout=0
                )
            except BaseException:
                for connection in opened:
                    connection.close()
                raise
            return writer, reader, inline

        try:
            writer_connection, reader_connection, inline = await asyncio.to_thread(connect)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise StoreUnavailable(f"cannot open the SQLite store {location}: {exc}") from exc
            raise _translate(exc, f"open the SQLite store {location}") from exc
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(
                f"cannot open the SQLite store {location}: {exc}; check that the path is a "
                "writable directory and the file is a thalo SQLite store"
            ) from exc
        writer = ConnectionThread(
            "thalo-sqlite-writer",
            writer_connection,
            write_type=_Write,
            write_batch=_write_batch,
            serve_session=_serve_session,
        )
        writer.start()
        if reader_connection is None:
            reader = writer
        else:
            reader = ConnectionThread(
                "thalo-sqlite-reader", reader_connection, serve_session=_serve_session
            )
            reader.start()
        return cls(url, writer, reader, inline, sql_condition=sql_condition)

    # --- the MessageStore protocol ------------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    async def write_message(
        self, stream_name: str, message: NewMessage, expected_version: int | None = None
    ) -> int:
        # The same as StoreBase's, without one coroutine in between (the hot path).
        encoded = encode_messages(stream_name, (message,))
        job = _Write(stream_name, encoded, check_expected_version(expected_version))
        position = self._write_alone(job)
        if position is None or time.monotonic() - self._yielded > _YIELD_EVERY:
            return await self._write_rest(job, position)
        return position

    async def write_messages(
        self,
        stream_name: str,
        messages: Sequence[NewMessage],
        expected_version: int | None = None,
    ) -> int:
        encoded = encode_messages(stream_name, messages)
        job = _Write(stream_name, encoded, check_expected_version(expected_version))
        position = self._write_alone(job)
        if position is None or time.monotonic() - self._yielded > _YIELD_EVERY:
            return await self._write_rest(job, position)
        return position

    def _write_alone(self, job: _Write) -> int | None:
        """Commit ``job`` inline if it is alone (module docstring): its last position, or
        None when it must be queued. Every Python step here runs once per lone write."""
        self._refuse_inside_transaction("write messages")
        if self._closed:
            raise StoreError("the message store is closed")
        # Alone: no write is queued, and the last write came from this same task
        # (several tasks writing take turns, so a change of task means company).
        task = asyncio.current_task()
        alone = task is self._last_writer or self._last_writer is None
        self._last_writer = task
        if alone and not self._queued and self._inline is not None and self._writer.idle:
            return _write_now(self._inline, job)
        return None

    async def _write_rest(self, job: _Write, position: int | None) -> int:
        """A write that was not committed inline goes to the writer thread. One that was
        yields to the loop: an inline write never suspends, so a task writing in a loop
        would starve every other task; it yields at least every ``_YIELD_EVERY``."""
        if position is not None:
            await asyncio.sleep(0)
            self._yielded = time.monotonic()
            return position
        self._queued += 1
        try:
            written: int = await self._writer.submit(job.queue())
        finally:
            self._queued -= 1
        return written

    async def get_stream_messages(
        self,
        stream_name: str,
        position: int = 0,
        batch_size: int = 1000,
        condition: str | None = None,
    ) -> list[Message]:
        name = check_stream_read(stream_name)
        args: list[Any] = [name, check_position(position)]
        sql = f"SELECT {_COLUMNS} FROM messages WHERE stream_name = ? AND position >= ?"
        sql += self._condition(condition)
        args.append(check_batch_size(batch_size))
        sql += " ORDER BY position LIMIT ?"
        return await self._read(sql, args, condition)

    async def get_stream_raw(
        self, stream_name: str, position: int = 0, batch_size: int = 1000
    ) -> list[RawMessage]:
        args = [check_stream_read(stream_name), check_position(position)]
        args.append(check_batch_size(batch_size))
        return await self._query(_RAW_SQL, args, None, raw_messages_from_rows)

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
        name, correlation, member, size = check_category_read(
            category, correlation, consumer_group_member, consumer_group_size
        )
        args: list[Any] = [name, check_position(position)]
        sql = f"SELECT {_COLUMNS} FROM messages WHERE category = ? AND global_position >= ?"
        if correlation is not None:
            sql += " AND correlation_category = ?"
            args.append(correlation)
        if member is not None:
            sql += " AND abs(cardinal_hash) % ? = ?"
            args += [size, member]
        sql += self._condition(condition)
        args.append(check_batch_size(batch_size))
        sql += " ORDER BY global_position LIMIT ?"
        return await self._read(sql, args, condition)

    async def get_last_stream_message(
        self, stream_name: str, type: str | None = None
    ) -> Message | None:
        args: list[Any] = [validate_stream_name(stream_name)]
        sql = f"SELECT {_COLUMNS} FROM messages WHERE stream_name = ?"
        if check_type(type) is not None:
            sql += " AND type = ?"
            args.append(type)
        found = await self._read(sql + " ORDER BY position DESC LIMIT 1", args, None)
        return found[0] if found else None

    async def stream_version(self, stream_name: str) -> int | None:
        name = validate_stream_name(stream_name)
        self._refuse_inside_transaction("read", reads=True)

        def version(connection: sqlite3.Connection) -> int | None:
            (value,) = connection.execute(_VERSION_SQL, (name,)).fetchone()
            return value if value is None else int(value)

        try:
            result: int | None = await self._reader.submit(Call(version))
        except sqlite3.Error as exc:
            raise _translate(exc, "read the stream version") from exc
        return result

    async def init(self) -> list[str]:
        """The schema is created when the store opens; nothing is left to do."""
        return [f"SQLite store {self._url}: messages table and thalo's tables are ready"]

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[SqlTransaction]:
        """Own-tables transaction: ``BEGIN IMMEDIATE`` on the writer connection, or with
        ``read_only`` a plain ``BEGIN`` on the reader connection (no write lock).

        A writing one makes other writes wait until it ends, so keep it short;
        inside either, use only the transaction, not the store's message methods
        that need the same connection (they raise).
        """
        held = _OPEN_TRANSACTION.get()
        if held is not None and held[0] is self:
            raise StoreError(
                "cannot open a nested transaction inside store.transaction() on SQLite; "
                "open it before or after the transaction block"
            )
        thread = self._reader if read_only else self._writer
        session = Session(read_only=read_only)
        try:
            await thread.submit(session)
        except BaseException:
            # Cancelled while waiting for the thread: it will still begin this
            # session, so tell it to end at once rather than wait forever.
            session.requests.put(SessionRequest("rollback"))
            raise
        token = _OPEN_TRANSACTION.set((self, thread))
        transaction = _SqliteTransaction(session)
        try:
            yield transaction
        except BaseException:
            await asyncio.shield(transaction._send(SessionRequest("rollback")))
            raise
        else:
            await asyncio.shield(transaction._send(SessionRequest("commit")))
        finally:
            _OPEN_TRANSACTION.reset(token)

    async def close(self) -> None:
        held = _OPEN_TRANSACTION.get()
        if held is not None and held[0] is self:
            raise StoreError(
                "cannot close the store inside store.transaction() on SQLite: the transaction "
                "holds a connection until it ends; close it after the transaction block"
            )
        if self._closed:
            return
        self._closed = True
        threads = {self._writer, self._reader}
        for thread in threads:
            thread.stop()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        if self._inline is not None:
            self._inline.close()

    # --- helpers --------------------------------------------------------------------

    def _refuse_inside_transaction(self, doing: str, *, reads: bool = False) -> None:
        held = _OPEN_TRANSACTION.get()
        if held is None or held[0] is not self:
            return
        if held[1] is not (self._reader if reads else self._writer):
            return
        which = "reader" if held[1] is self._reader and held[1] is not self._writer else "writer"
        raise StoreError(
            f"cannot {doing} inside store.transaction() on SQLite: the transaction holds the "
            f"{which} until it ends; do it before or after the transaction block"
        )

    def _condition(self, condition: str | None) -> str:
        if condition is None:
            return ""
        if not isinstance(condition, str):
            raise InvalidStoreArgument(f"condition must be SQL text, got {condition!r}")
        if not self._sql_condition:
            raise InvalidStoreArgument(CONDITION_NOT_ACTIVATED + CONDITION_HINT)
        return f" AND ({condition})"

    async def _read(self, sql: str, args: list[Any], condition: str | None) -> list[Message]:
        return await self._query(sql, args, condition, messages_from_rows)

    async def _query(
        self,
        sql: str,
        args: list[Any],
        condition: str | None,
        convert: Callable[[sqlite3.Cursor], list[_M]],
    ) -> list[_M]:
        """Rows of ``sql`` from the reader thread, converted there by ``convert``."""
        self._refuse_inside_transaction("read", reads=True)

        def run(connection: sqlite3.Connection) -> list[_M]:
            return convert(connection.execute(sql, args))

        try:
            messages: list[_M] = await self._reader.submit(Call(run))
        except sqlite3.Error as exc:
            if condition is not None:
                raise InvalidStoreArgument(
                    f"the SQL condition {condition!r} failed: {exc}"
                ) from exc
            raise _translate(exc, "read messages") from exc
        return messages
