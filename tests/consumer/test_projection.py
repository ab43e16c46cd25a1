"""Projections and read models in-process, on both store backends: delivery, failures, catch-up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import query, write_events

from thalo.consumer import Projection, ProjectionRunner, ReadModel
from thalo.core import Message, NewMessage
from thalo.store import SqlTransaction, open_store
from thalo.testing.conformance import unique_category


def counting_model(name: str, category: str, table: str, **options: object) -> ReadModel:
    """A read model counting how often each global position was applied."""
    model = ReadModel(name, category, **options)  # type: ignore[arg-type]

    @model.setup
    async def create(tx: SqlTransaction) -> None:
        await tx.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(global_position BIGINT PRIMARY KEY, times INTEGER)"
        )

    @model.on("Happened")
    async def happened(message: Message, tx: SqlTransaction) -> None:
        await tx.execute(
            f"INSERT INTO {table} VALUES (%s, 1) "
            f"ON CONFLICT (global_position) DO UPDATE SET times = {table}.times + 1",
            (message.global_position,),
        )

    return model


async def test_resume_after_clean_stop(backend_url: str) -> None:
    cat = unique_category("resume")
    seen: list[int] = []
    projection = Projection(f"{cat}_p", cat, position_update_interval=1000)
    projection.on("Happened")(lambda m: seen.append(m.data["n"]))
    table = f"t_{cat}"
    model = counting_model(f"{cat}_rm", cat, table)
    async with open_store(backend_url) as store:
        await write_events(store, cat, 250)
        for item in (projection, model):
            stop = asyncio.Event()
            runner = ProjectionRunner(store, item)
            task = asyncio.create_task(runner.run(stop))
            while runner.progress[cat].handled < 250:
                await asyncio.sleep(0.01)
            stop.set()
            await task
        await write_events(store, cat, 100)
        for item in (projection, model):
            await ProjectionRunner(store, item).run(until_caught_up=True)
    # Clean stops record the position: nothing handled twice, nothing lost.
    assert seen == list(range(250)) + list(range(100))
    rows = await query(backend_url, f"SELECT count(*), max(times) FROM {table}")
    assert rows == [(350, 1)]


async def test_handler_error_retries_then_parks_and_replay_parked_redelivers(
    backend_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cat = unique_category("park")
    failing = {3}
    calls: list[int] = []
    projection = Projection(f"{cat}_p", cat, max_attempts=3, retry_delay=0.01)

    @projection.on("Happened")
    async def handle(message: Message) -> None:
        calls.append(message.data["n"])
        if message.data["n"] in failing:
            raise RuntimeError(f"cannot handle {message.data['n']}")

    async with open_store(backend_url) as store:
        await write_events(store, cat, 6, entities=1)
        await ProjectionRunner(store, projection).run(until_caught_up=True)
        # Stopped at 3 (nothing after it ran meanwhile), three attempts, then moved on.
        assert calls == [0, 1, 2, 3, 3, 3, 4, 5]
        assert "at position 3 (global position" in caplog.text and f"{cat}-e0" in caplog.text
        parked = await store.get_stream_messages(f"{cat}:parked-{cat}_p")
        assert [m.data for m in parked] == [{"n": 3}]
        assert parked[0].metadata is not None
        assert parked[0].metadata["parkedMessageStreamName"] == f"{cat}-e0"
        assert parked[0].metadata["parkedAttempts"] == 3
        # Fixed: replay-parked delivers it once, the original message as it was.
        failing.clear()
        calls.clear()
        assert await ProjectionRunner(store, projection).replay_parked() == 1
        assert calls == [3]
        assert await ProjectionRunner(store, projection).replay_parked() == 0


async def test_read_model_failure_commits_what_precedes_and_parks_exactly_once(
    backend_url: str,
) -> None:
    cat = unique_category("rmpark")
    table = f"t_{cat}"
    model = counting_model(f"{cat}_rm", cat, table, max_attempts=2, retry_delay=0.01)
    original = model.handlers["Happened"]
    broken = {True}

    async def flaky(message: Message, tx: SqlTransaction) -> None:
        await original(message, tx)  # written, then rolled back with the failure
        if broken and message.data["n"] == 120:
            raise ValueError("bad event")

    model.handlers["Happened"] = flaky
    async with open_store(backend_url) as store:
        await write_events(store, cat, 300)
        await ProjectionRunner(store, model).run(until_caught_up=True)
        rows = await query(backend_url, f"SELECT count(*), max(times) FROM {table}")
        assert rows == [(299, 1)]
        broken.clear()
        assert await ProjectionRunner(store, model).replay_parked() == 1
    rows = await query(backend_url, f"SELECT count(*), max(times) FROM {table}")
    assert rows == [(300, 1)]


async def test_unlimited_attempts_never_skip_a_message(backend_url: str) -> None:
    cat = unique_category("stuck")
    seen: list[int] = []
    failures = {"left": 4}
    projection = Projection(f"{cat}_p", cat, max_attempts=None, retry_delay=0.01)

    @projection.on("Happened")
    def handle(message: Message) -> None:
        if message.data["n"] == 1 and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("not yet")
        seen.append(message.data["n"])

    async with open_store(backend_url) as store:
        await write_events(store, cat, 3, entities=1)
        await ProjectionRunner(store, projection).run(until_caught_up=True)
        assert await store.stream_version(f"{cat}:parked-{cat}_p") is None
    assert seen == [0, 1, 2]


@pytest.mark.slow
async def test_consumer_100k_behind_catches_up(backend_url: str) -> None:
    cat = unique_category("behind")
    seen: list[int] = []
    projection = Projection(f"{cat}_p", cat)
    projection.on("Happened")(lambda m: seen.append(m.global_position))
    table = f"t_{cat}"
    model = counting_model(f"{cat}_rm", cat, table)
    async with open_store(backend_url) as store:
        await write_events(store, cat, 100_000)
        started = time.perf_counter()
        await ProjectionRunner(store, projection).run(until_caught_up=True)
        elapsed = time.perf_counter() - started
        assert len(seen) == 100_000 and seen == sorted(seen)
        print(f"{store.dialect}: projection caught up 100,000 events in {elapsed:.2f} s")
        if store.dialect == "sqlite":  # on PostgreSQL a statement is a round trip: ~5k/s
            started = time.perf_counter()
            await ProjectionRunner(store, model).run(until_caught_up=True)
            elapsed = time.perf_counter() - started
            print(f"sqlite: read model caught up 100,000 events in {elapsed:.2f} s")
            rows = await query(backend_url, f"SELECT count(*), max(times) FROM {table}")
            assert rows == [(100_000, 1)]


async def test_idle_consumer_wakes_soon_after_a_write(backend_url: str) -> None:
    cat = unique_category("live")
    latencies: list[float] = []
    projection = Projection(f"{cat}_p", cat)
    projection.on("Ping")(lambda m: latencies.append(time.perf_counter() - m.data["t"]))
    async with open_store(backend_url) as store:
        stop = asyncio.Event()
        runner = ProjectionRunner(store, projection, idle_timeout=5.0)
        task = asyncio.create_task(runner.run(stop))
        await asyncio.sleep(0.3)
        for _ in range(10):
            await store.write_message(f"{cat}-1", NewMessage("Ping", {"t": time.perf_counter()}))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        stop.set()
        await task
    latencies.sort()
    assert len(latencies) == 10
    assert latencies[5] < 0.2, latencies  # idle_timeout is 5 s: the watcher woke it


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database for a read model apart from the store: an SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'read_model.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_a_read_model_in_a_database_of_its_own(backend_url: str, own_database: str) -> None:
    """Rows and position go to the read model's own database, exactly once, across a resume."""
    cat = unique_category("own")
    table = f"t_{cat}"
    database = own_database
    if backend_url == database:
        pytest.skip("the Message DB store's own database is covered by the other tests")
    model = counting_model(f"{cat}_rm", cat, table, database=database)
    async with open_store(backend_url) as store:
        await write_events(store, cat, 120)
        await ProjectionRunner(store, model).run(until_caught_up=True)
        await write_events(store, cat, 30)
        await ProjectionRunner(store, model).run(until_caught_up=True)
    rows = await _rows(database, f"SELECT count(*), max(times) FROM {table}")
    assert rows == [(150, 1)]
    positions = await _rows(database, "SELECT count(*) FROM thalo_read_model_positions")
    assert positions[0][0] >= 1  # the position lives beside the rows
    if backend_url.startswith("sqlite"):  # nothing of the read model in the store's file
        assert await query(
            backend_url, f"SELECT count(*) FROM sqlite_master WHERE name = '{table}'"
        ) == [(0,)]


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite:///") :]) as connection:
            return connection.execute(sql).fetchall()
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as connection:
        cursor = await connection.execute(sql)
        return list(await cursor.fetchall())
