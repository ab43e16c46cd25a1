"""What only the embedded SQLite backend promises: gap-free positions, group commit, its file."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import time
from pathlib import Path

import pytest

from thalo.core import NewMessage
from thalo.errors import (
    DuplicateMessageId,
    StoreError,
    StoreNotInitialized,
    StoreUnavailable,
    WrongExpectedVersion,
)
from thalo.store import open_store


def _url(path: Path, query: str = "") -> str:
    return f"sqlite:///{path.as_posix()}{query}"


async def test_global_positions_are_gap_free_after_failures(tmp_path: Path) -> None:
    async with open_store(_url(tmp_path / "s.db")) as store:
        first = NewMessage("A", {})
        await store.write_message("a-1", first)
        with pytest.raises(WrongExpectedVersion):
            await store.write_message("a-1", NewMessage("A", {}), -1)
        with pytest.raises(DuplicateMessageId):
            await store.write_messages("a-2", [NewMessage("A", {}), first])
        await store.write_messages("a-2", [NewMessage("A", {}), NewMessage("A", {})])
        await store.write_message("b-1", NewMessage("B", {}))
        read = await store.get_category_messages("a")
        read += await store.get_category_messages("b")
    assert sorted(m.global_position for m in read) == [1, 2, 3, 4]


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    """Group commit: writers queued together get one transaction (one time stamp)."""
    async with open_store(_url(tmp_path / "s.db")) as store:
        await asyncio.gather(
            *(store.write_message(f"g-{n}", NewMessage("A", {"n": n})) for n in range(64))
        )
        read = await store.get_category_messages("g", batch_size=-1)
    assert len(read) == 64
    assert len({m.time for m in read}) < 64


class _Turns:
    """A task that counts how often it gets to run, sleeping ``interval`` between turns."""

    def __init__(self, interval: float) -> None:
        self.count = 0
        self._task = asyncio.create_task(self._run(interval))

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.count += 1

    def stop(self) -> None:
        self._task.cancel()


async def test_a_lone_write_waits_for_another_process_lock_off_the_loop(tmp_path: Path) -> None:
    """A lone write runs inline on the loop, but when another connection holds SQLite's
    write lock it must neither fail nor block the loop: the writer thread waits."""
    path = tmp_path / "s.db"
    async with open_store(_url(path)) as store:
        await store.write_message("w-1", NewMessage("A", {}), -1)  # inline: nothing else runs
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # what another process's writer would hold
        ticks = _Turns(0.01)
        writing = asyncio.create_task(store.write_message("w-1", NewMessage("A", {}), 0))
        await asyncio.sleep(0.3)
        assert not writing.done()  # still waiting for the lock...
        assert ticks.count >= 10  # ...and the loop kept running meanwhile
        other.execute("ROLLBACK")
        other.close()
        assert await asyncio.wait_for(writing, 10) == 1
        ticks.stop()
        assert [m.position for m in await store.get_stream_messages("w-1")] == [0, 1]
        # Writes that meet another process's lock inline fail the same way as queued ones.
        with pytest.raises(WrongExpectedVersion):
            await store.write_message("w-1", NewMessage("A", {}), 0)


async def test_lone_writes_yield_to_other_tasks(tmp_path: Path) -> None:
    """An inline write never suspends, so a caller writing in a loop must still let
    other tasks run (at least every few milliseconds)."""
    async with open_store(_url(tmp_path / "s.db")) as store:
        other = _Turns(0)
        await asyncio.sleep(0)
        version, started = -1, time.monotonic()
        while time.monotonic() - started < 0.1:  # however fast fsync is here
            await store.write_message("y-1", NewMessage("A", {}), version)
            version += 1
        other.stop()
        assert other.count >= 10  # yields at least every 2 ms: ~50 expected
        assert await store.stream_version("y-1") == version


async def test_a_read_only_transaction_leaves_the_writer_free(tmp_path: Path) -> None:
    """Registry reads use read-only transactions: on the reader connection, so
    writes (this process's or another's) need not wait for them."""
    async with open_store(_url(tmp_path / "s.db")) as store:
        await store.init()
        async with store.transaction(read_only=True) as tx:
            assert await tx.execute("SELECT 1") == [(1,)]
            # A write completes while the read-only transaction is open...
            assert await asyncio.wait_for(store.write_message("r-1", NewMessage("A", {})), 5) == 0
            # ...but reads need the reader connection it holds.
            with pytest.raises(StoreError, match="holds the reader"):
                await store.get_stream_messages("r-1")
            with pytest.raises(StoreError, match="nested"):
                async with store.transaction():
                    pass
            with pytest.raises(StoreError, match="close it after"):
                await store.close()
        assert [m.position for m in await store.get_stream_messages("r-1")] == [0]


async def test_data_survives_reopening(tmp_path: Path) -> None:
    url = _url(tmp_path / "deep" / "folder" / "s.db")
    async with open_store(url) as store:
        await store.write_messages("p-1", [NewMessage("A", {"n": n}) for n in range(3)])
    async with open_store(url) as store:
        assert await store.stream_version("p-1") == 2
    connection = sqlite3.connect(tmp_path / "deep" / "folder" / "s.db")
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()


async def test_synchronous_normal_is_accepted(tmp_path: Path) -> None:
    async with open_store(_url(tmp_path / "s.db", "?synchronous=normal")) as store:
        assert await store.write_message("n-1", NewMessage("A", {})) == 0


async def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version=99")
    connection.close()
    with pytest.raises(StoreNotInitialized, match="newer thalo"):
        await open_store(_url(path))


async def test_refuses_a_foreign_messages_table(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE messages (x)")
    connection.close()
    with pytest.raises(StoreNotInitialized, match="thalo did not create"):
        await open_store(_url(path))


async def test_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_text("not a database, just text " * 100)
    with pytest.raises(StoreUnavailable, match="cannot open the SQLite store"):
        await open_store(_url(path))


async def test_message_methods_inside_a_transaction_raise(tmp_path: Path) -> None:
    async with open_store(_url(tmp_path / "s.db")) as store:
        async with store.transaction() as tx:
            with pytest.raises(StoreError, match=r"inside store\.transaction"):
                await store.write_message("t-1", NewMessage("A", {}))
            await tx.execute("SELECT 1")
        assert await store.write_message("t-1", NewMessage("A", {})) == 0


async def test_memory_reads_inside_a_transaction_raise() -> None:
    async with open_store("sqlite://:memory:") as store, store.transaction():
        with pytest.raises(StoreError, match=r"inside store\.transaction"):
            await store.get_stream_messages("t-1")


async def test_transaction_sql_errors_are_store_errors(tmp_path: Path) -> None:
    async with open_store(_url(tmp_path / "s.db")) as store:
        with pytest.raises(StoreError, match="SQL failed"):
            async with store.transaction() as tx:
                await tx.execute("SELECT * FROM no_such_table")


async def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    store = await open_store(_url(tmp_path / "s.db"))
    await store.write_message("z-1", NewMessage("A", {}))
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.write_message("z-1", NewMessage("A", {}))


async def test_memory_stores_are_private() -> None:
    async with open_store("sqlite://:memory:") as one, open_store("sqlite:///:memory:") as two:
        await one.write_message("m-1", NewMessage("A", {}))
        assert await two.stream_version("m-1") is None


async def test_a_cancelled_transaction_does_not_hold_the_writer(tmp_path: Path) -> None:
    async with open_store(_url(tmp_path / "s.db")) as store:

        async def waiting() -> None:
            async with store.transaction() as other:
                await other.execute("SELECT 1")

        async with store.transaction() as tx:
            # A fresh context: the task is not "inside" this transaction, it waits for it.
            task = asyncio.create_task(waiting(), context=contextvars.Context())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await tx.execute("SELECT 1")
        written = store.write_message("w-1", NewMessage("A", {}))
        assert await asyncio.wait_for(written, timeout=10) == 0


async def test_closing_inside_a_transaction_raises(tmp_path: Path) -> None:
    async with open_store(_url(tmp_path / "s.db")) as store, store.transaction():
        with pytest.raises(StoreError, match="cannot close the store"):
            await store.close()
