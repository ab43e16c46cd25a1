"""Message store throughput: thalo's backends against bare-driver ceilings measured in the same run.

For each backend it prints events/s (median of --repeat runs) for appending
single events with an expected version (1 writer, 8 concurrent writers),
batches of 100, and reading a stream; beside each, the ceiling and the ratio.

- SQLite ceiling: a bare sqlite3 ``INSERT`` loop into the same table, same file
  and pragmas (one commit per event; 100 per commit for batches); for reads a
  bare ``SELECT`` of the same rows.
- Also printed for SQLite, to show where the time goes: thalo's checked insert
  called in a plain loop (no thread, no event loop), and the bare ``INSERT`` loop
  run on a thread with each ``INSERT`` awaited from the event loop (one future
  per row): the most any store can reach that keeps SQLite calls off the loop;
  likewise 8 tasks awaiting bare INSERTs that one thread commits together, or
  that the event loop itself commits at the end of each turn; thalo's own group
  commit of 8 checked writes called in a plain loop; and
  bare INSERTs 8 per commit in a plain loop, the bound of group commit for 8
  writers that each await their write (no batch can hold more than 8).
- Message DB ceiling: a bare psycopg loop calling ``write_message`` (autocommit);
  for batches one pipelined ``executemany`` per 100 in a transaction; for reads a
  bare ``SELECT * FROM get_stream_messages``.

Targets (issue 2): single-writer append ≥ 0.8 of its ceiling on both backends;
8 concurrent writers on SQLite ≥ 3× the single-writer ceiling (group commit);
on Message DB, 8 writers spread over categories ≥ 2× one writer.

    python bench/store_append.py [--postgres-url URL] [--events 2000] [--repeat 3]

The PostgreSQL URL defaults to $THALO_BENCH_POSTGRES_URL or $THALO_TEST_POSTGRES_URL;
Message DB must be installed there (``thalo store init URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from thalo.core import NewMessage
from thalo.store import MessageStore, open_store

WRITERS = 8
BATCH = 100
DATA = {"amount": 10, "note": "benchmark event"}
META = {"correlationStreamName": "bench-1", "schemaVersion": "1"}


def _category() -> str:
    return f"bench{uuid.uuid4().hex[:10]}"


def _median(runs: list[float]) -> float:
    return statistics.median(runs)


async def _timed(count: int, body: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await body()
    return count / (time.perf_counter() - start)


def _row(figure: str, value: float, ceiling: float | None, label: str, target: str = "") -> None:
    line = f"  {figure:<44} {value:>10,.0f} ev/s"
    if ceiling is not None:
        line += f"   {label} {ceiling:>10,.0f} ev/s   ratio {value / ceiling:5.2f}"
    if target:
        line += f"   (target {target})"
    print(line)


# --- thalo's side (same code for both backends) -------------------------------------------


def _messages(count: int) -> list[NewMessage]:
    """Made before the clock starts, as the ceilings' rows are."""
    return [NewMessage("Benched", DATA, META) for _ in range(count)]


async def thalo_single(store: MessageStore, events: int) -> float:
    stream = f"{_category()}-1"
    messages = _messages(events)

    async def body() -> None:
        for version, message in enumerate(messages, start=-1):
            await store.write_message(stream, message, version)

    return await _timed(events, body)


async def thalo_concurrent(store: MessageStore, events: int, spread_categories: bool) -> float:
    shared = _category()
    per_writer = events // WRITERS

    prepared = [_messages(per_writer) for _ in range(WRITERS)]

    async def writer(number: int) -> None:
        category = _category() if spread_categories else shared
        stream = f"{category}-{number}"
        for version, message in enumerate(prepared[number], start=-1):
            await store.write_message(stream, message, version)

    async def body() -> None:
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))

    return await _timed(per_writer * WRITERS, body)


async def thalo_batches(store: MessageStore, events: int) -> float:
    stream = f"{_category()}-1"
    batches = max(1, events // BATCH)
    prepared = [_messages(BATCH) for _ in range(batches)]

    async def body() -> None:
        for b, messages in enumerate(prepared):
            await store.write_messages(stream, messages, b * BATCH - 1)

    return await _timed(batches * BATCH, body)


async def thalo_read(store: MessageStore, stream: str, events: int) -> float:
    async def body() -> None:
        position = 0
        while True:
            found = await store.get_stream_messages(stream, position, 1000)
            if not found:
                return
            position = found[-1].position + 1

    return await _timed(events, body)


async def fill(store: MessageStore, events: int) -> str:
    stream = f"{_category()}-read"
    for start in range(0, events, BATCH):
        count = min(BATCH, events - start)
        await store.write_messages(
            stream, [NewMessage("Benched", DATA, META) for _ in range(count)]
        )
    return stream


# --- SQLite ceilings -------------------------------------------------------------------------

_INSERT = (
    "INSERT INTO messages (position, time, stream_name, type, data, metadata, id, "
    "category, cardinal_hash, correlation_category) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _sqlite_connection(path: Path, synchronous: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    return connection


def _rows(stream: str, start: int, count: int) -> list[tuple[Any, ...]]:
    data, meta = orjson.dumps(DATA).decode(), orjson.dumps(META).decode()
    return [
        (
            start + i,
            "2026-01-01 00:00:00.000000",
            stream,
            "Benched",
            data,
            meta,
            str(uuid.uuid4()),
            stream.split("-")[0],
            1,
            "bench",
        )
        for i in range(count)
    ]


def sqlite_ceiling_single(path: Path, synchronous: str, events: int) -> float:
    connection = _sqlite_connection(path, synchronous)
    rows = _rows(f"{_category()}-1", 0, events)
    start = time.perf_counter()
    for row in rows:
        connection.execute(_INSERT, row)  # autocommit: one transaction per event
    rate = events / (time.perf_counter() - start)
    connection.close()
    return rate


async def sqlite_direct_single(path: Path, synchronous: str, events: int) -> float:
    """thalo's checked single-message insert called in a plain loop: where the time goes."""
    from thalo.store.encoding import encode_messages
    from thalo.store.sqlite import _insert_one, _now, _Write

    connection = _sqlite_connection(path, synchronous)
    stream = f"{_category()}-1"
    jobs = [
        _Write(stream, encode_messages(stream, [m]), version)
        for version, m in enumerate(_messages(events), start=-1)
    ]
    start = time.perf_counter()
    for job in jobs:
        _insert_one(connection, job, _now())
    rate = events / (time.perf_counter() - start)
    connection.close()
    return rate


async def sqlite_direct_group(path: Path, synchronous: str, events: int) -> float:
    """thalo's group commit of ``WRITERS`` single-message writes (each with its
    expected version) called in a plain loop: the most the 8-writer figure could
    reach with thalo's checks and no asyncio or thread cost at all."""
    from thalo.store.encoding import encode_messages
    from thalo.store.sqlite import _Write, _write_batch

    connection = _sqlite_connection(path, synchronous)
    streams = [f"{_category()}-{n}" for n in range(WRITERS)]
    batches = [
        [_Write(stream, encode_messages(stream, _messages(1)), version) for stream in streams]
        for version in range(-1, events // WRITERS - 1)
    ]
    start = time.perf_counter()
    for batch in batches:
        for _, _, error in _write_batch(connection, batch):
            assert error is None, error
    rate = len(batches) * WRITERS / (time.perf_counter() - start)
    connection.close()
    return rate


async def sqlite_ceiling_threaded(path: Path, synchronous: str, events: int) -> float:
    """The bare INSERT loop again, but each INSERT run on a thread and awaited from the
    event loop (one future per INSERT, as any store that keeps SQLite off the loop must):
    the ceiling less the cost of the thread hand-off on this machine."""
    connection = _sqlite_connection(path, synchronous)
    rows = _rows(f"{_category()}-1", 0, events)
    jobs: queue.SimpleQueue[tuple[tuple[Any, ...], asyncio.Future[None]] | None] = (
        queue.SimpleQueue()
    )
    loop = asyncio.get_running_loop()

    def run() -> None:
        while (job := jobs.get()) is not None:
            connection.execute(_INSERT, job[0])
            loop.call_soon_threadsafe(job[1].set_result, None)

    thread = threading.Thread(target=run)
    thread.start()
    start = time.perf_counter()
    for row in rows:
        future = loop.create_future()
        jobs.put((row, future))
        await future
    rate = events / (time.perf_counter() - start)
    jobs.put(None)
    thread.join()
    connection.close()
    return rate


async def sqlite_ceiling_group_commit(path: Path, synchronous: str, events: int) -> float:
    """``WRITERS`` tasks each awaiting bare INSERTs run on one thread that commits all
    rows queued at that moment in one transaction: group commit with nothing else
    (no expected version, no encoding), the most the 8-writer figure could reach."""
    connection = _sqlite_connection(path, synchronous)
    per_writer = events // WRITERS
    rows = [_rows(f"{_category()}-{n}", 0, per_writer) for n in range(WRITERS)]
    jobs: queue.SimpleQueue[tuple[tuple[Any, ...], asyncio.Future[None]] | None] = (
        queue.SimpleQueue()
    )
    loop = asyncio.get_running_loop()

    def settle(futures: list[asyncio.Future[None]]) -> None:
        for future in futures:
            future.set_result(None)

    def run() -> None:
        while True:
            batch = [jobs.get()]
            while not jobs.empty():
                batch.append(jobs.get())
            done = [job for job in batch if job is not None]
            if done:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(_INSERT, [row for row, _ in done])
                connection.execute("COMMIT")
                loop.call_soon_threadsafe(settle, [future for _, future in done])
            if len(done) < len(batch):
                return

    async def writer(number: int) -> None:
        for row in rows[number]:
            future = loop.create_future()
            jobs.put((row, future))
            await future

    thread = threading.Thread(target=run)
    thread.start()
    start = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    rate = per_writer * WRITERS / (time.perf_counter() - start)
    jobs.put(None)
    thread.join()
    connection.close()
    return rate


async def sqlite_ceiling_group_commit_on_loop(path: Path, synchronous: str, events: int) -> float:
    """``WRITERS`` tasks each awaiting bare INSERTs that the event loop itself commits
    together at the end of each turn (no thread at all): the bound for a store that
    would run group commit, fsync included, on the loop."""
    connection = _sqlite_connection(path, synchronous)
    per_writer = events // WRITERS
    rows = [_rows(f"{_category()}-{n}", 0, per_writer) for n in range(WRITERS)]
    loop = asyncio.get_running_loop()
    pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []

    def flush() -> None:
        batch = pending[:]
        pending.clear()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(_INSERT, [row for row, _ in batch])
        connection.execute("COMMIT")
        for _, future in batch:
            future.set_result(None)

    async def writer(number: int) -> None:
        for row in rows[number]:
            future = loop.create_future()
            if not pending:
                loop.call_soon(flush)
            pending.append((row, future))
            await future

    start = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    rate = per_writer * WRITERS / (time.perf_counter() - start)
    connection.close()
    return rate


def sqlite_ceiling_batches(path: Path, synchronous: str, events: int, size: int = BATCH) -> float:
    """Bare INSERTs, ``size`` per commit, in a plain loop. With ``size`` = ``WRITERS``
    it bounds group commit for that many writers that each await their write: a
    batch can hold at most one write per writer."""
    connection = _sqlite_connection(path, synchronous)
    stream = f"{_category()}-1"
    batches = max(1, events // size)
    prepared = [_rows(stream, b * size, size) for b in range(batches)]
    start = time.perf_counter()
    for rows in prepared:
        connection.execute("BEGIN")
        connection.executemany(_INSERT, rows)
        connection.execute("COMMIT")
    rate = batches * size / (time.perf_counter() - start)
    connection.close()
    return rate


def sqlite_ceiling_read(path: Path, stream: str, events: int) -> float:
    connection = _sqlite_connection(path, "FULL")
    start = time.perf_counter()
    rows = connection.execute(
        "SELECT id, stream_name, type, position, global_position, data, metadata, time "
        "FROM messages WHERE stream_name = ? ORDER BY position",
        (stream,),
    ).fetchall()
    rate = len(rows) / (time.perf_counter() - start)
    connection.close()
    assert len(rows) == events
    return rate


# --- Message DB ceilings ---------------------------------------------------------------------

_WRITE = (
    "SELECT write_message(%s::varchar, %s::varchar, %s::varchar, %s::jsonb, %s::jsonb, %s::bigint)"
)


async def _pg_connect(url: str) -> Any:
    import psycopg

    from thalo.store.messagedb import connection_options

    return await psycopg.AsyncConnection.connect(url, **connection_options(url))


def _pg_params(stream: str, start: int, count: int) -> list[tuple[Any, ...]]:
    data, meta = orjson.dumps(DATA).decode(), orjson.dumps(META).decode()
    return [(str(uuid.uuid4()), stream, "Benched", data, meta, start + i - 1) for i in range(count)]


async def pg_ceiling_single(url: str, events: int) -> float:
    connection = await _pg_connect(url)
    params = _pg_params(f"{_category()}-1", 0, events)
    start = time.perf_counter()
    for p in params:
        await connection.execute(_WRITE, p)
    rate = events / (time.perf_counter() - start)
    await connection.close()
    return rate


async def pg_ceiling_batches(url: str, events: int) -> float:
    connection = await _pg_connect(url)
    stream = f"{_category()}-1"
    batches = max(1, events // BATCH)
    prepared = [_pg_params(stream, b * BATCH, BATCH) for b in range(batches)]
    start = time.perf_counter()
    for params in prepared:
        async with connection.transaction(), connection.cursor() as cursor:
            await cursor.executemany(_WRITE, params)
    rate = batches * BATCH / (time.perf_counter() - start)
    await connection.close()
    return rate


async def pg_ceiling_read(url: str, stream: str, events: int) -> float:
    connection = await _pg_connect(url)
    start = time.perf_counter()
    count, position = 0, 0
    while True:
        cursor = await connection.execute(
            "SELECT * FROM get_stream_messages(%s::varchar, %s::bigint, %s::bigint)",
            (stream, position, 1000),
        )
        rows = await cursor.fetchall()
        if not rows:
            break
        count += len(rows)
        position = rows[-1][3] + 1
    rate = count / (time.perf_counter() - start)
    await connection.close()
    assert count == events
    return rate


# --- the run ---------------------------------------------------------------------------------


async def _alternating(repeat: int, *measures: Callable[[], Awaitable[float]]) -> list[float]:
    """Run the measures in turn, ``repeat`` rounds, so drift in the machine's load
    hits a figure and its ceiling alike; return each one's median."""
    runs: list[list[float]] = [[] for _ in measures]
    for _ in range(repeat):
        for index, measure in enumerate(measures):
            runs[index].append(await measure())
    return [_median(r) for r in runs]


async def bench_sqlite(events: int, repeat: int, synchronous: str) -> None:
    with tempfile.TemporaryDirectory(prefix="thalo-bench-") as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite:///{path.as_posix()}?synchronous={synchronous.lower()}"
        print(f"SQLite (WAL, synchronous={synchronous}), {events} events, median of {repeat}")
        async with open_store(url) as store:
            await thalo_batches(store, 10_000)  # warm up: the WAL file reaches its working size

            async def ceiling() -> float:
                return sqlite_ceiling_single(path, synchronous, events)

            async def batch_ceiling() -> float:
                return sqlite_ceiling_batches(path, synchronous, events * 5)

            async def group_bound() -> float:
                return sqlite_ceiling_batches(path, synchronous, events * 2, WRITERS)

            figures = await _alternating(
                repeat,
                ceiling,
                lambda: thalo_single(store, events),
                lambda: sqlite_direct_single(path, synchronous, events),
                lambda: sqlite_ceiling_threaded(path, synchronous, events),
                lambda: thalo_concurrent(store, events * 2, False),
                lambda: sqlite_ceiling_group_commit(path, synchronous, events * 2),
                lambda: sqlite_ceiling_group_commit_on_loop(path, synchronous, events * 2),
                lambda: sqlite_direct_group(path, synchronous, events * 2),
                group_bound,
            )
            top, single, direct, threaded, many, group, on_loop, checked, bound = figures
            _row("append, 1 writer, expected version", single, top, "ceiling", "≥ 0.8")
            _row("  (its SQL alone: no thread, no event loop)", direct, top, "ceiling")
            _row("  (bare INSERT awaited through a thread)", threaded, top, "ceiling")
            _row("  (1 writer against that)", single, threaded, "threaded")
            _row(
                f"append, {WRITERS} concurrent writers (group commit)",
                many,
                top,
                "1-writer ceiling",
                "≥ 3",
            )
            _row(
                f"  (bare INSERTs, {WRITERS} writers, group commit)", group, top, "1-writer ceiling"
            )
            _row(f"  ({WRITERS} writers against that)", many, group, "bare group")
            _row(
                f"  (bare INSERTs, {WRITERS} writers, group commit on the loop)",
                on_loop,
                top,
                "1-writer ceiling",
            )
            _row(
                f"  (its SQL alone: {WRITERS} checked writes per commit)",
                checked,
                top,
                "1-writer ceiling",
            )
            _row(
                f"  (bare INSERTs, {WRITERS} per commit, one thread)",
                bound,
                top,
                "1-writer ceiling",
            )
            top, batched = await _alternating(
                repeat, batch_ceiling, lambda: thalo_batches(store, events * 5)
            )
            _row(f"append, batches of {BATCH}", batched, top, "ceiling")
            stream = await fill(store, events * 10)

            async def read_ceiling() -> float:
                return sqlite_ceiling_read(path, stream, events * 10)

            top, read = await _alternating(
                repeat, read_ceiling, lambda: thalo_read(store, stream, events * 10)
            )
            _row("read a stream (decoded Messages)", read, top, "bare SELECT")


async def bench_messagedb(url: str, events: int, repeat: int) -> None:
    print(f"Message DB at {url.split('@')[-1]}, {events} events, median of {repeat}")
    async with open_store(url) as store:
        top, single, spread, same = await _alternating(
            repeat,
            lambda: pg_ceiling_single(url, events),
            lambda: thalo_single(store, events),
            lambda: thalo_concurrent(store, events * 2, True),
            lambda: thalo_concurrent(store, events, False),
        )
        _row("append, 1 writer, expected version", single, top, "ceiling", "≥ 0.8")
        _row(f"append, {WRITERS} writers across categories", spread, single, "1 writer", "≥ 2")
        _row(f"append, {WRITERS} writers in one category", same, single, "1 writer")
        top, batched = await _alternating(
            repeat,
            lambda: pg_ceiling_batches(url, events * 5),
            lambda: thalo_batches(store, events * 5),
        )
        _row(f"append, batches of {BATCH}", batched, top, "ceiling")
        stream = await fill(store, events * 10)
        top, read = await _alternating(
            repeat,
            lambda: pg_ceiling_read(url, stream, events * 10),
            lambda: thalo_read(store, stream, events * 10),
        )
        _row("read a stream (decoded Messages)", read, top, "bare fetch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("THALO_BENCH_POSTGRES_URL")
        or os.environ.get("THALO_TEST_POSTGRES_URL"),
        help="Message DB database (default: $THALO_BENCH_POSTGRES_URL or $THALO_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--only", choices=["sqlite", "messagedb"], default=None)
    args = parser.parse_args()
    if args.only != "messagedb":
        asyncio.run(bench_sqlite(args.events, args.repeat, args.synchronous))
    if args.only != "sqlite":
        if not args.postgres_url:
            print("Message DB: skipped, no --postgres-url (or $THALO_BENCH_POSTGRES_URL)")
        else:
            asyncio.run(bench_messagedb(args.postgres_url, args.events, args.repeat))


if __name__ == "__main__":
    main()
