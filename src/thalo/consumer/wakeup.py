"""Waking idle consumers soon after a write, without polling the category reads.

Message DB's tables must stay as Message DB defines them, so there is no
trigger to ``NOTIFY`` from. Instead one watcher per store and process probes a
cheap *signature* of "something was written", only while some consumer waits:

- an SQLite file: ``os.stat`` of the database and its ``-wal`` file (size,
  mtime, inode) every 5 ms. No query at all: every commit changes the WAL.
- anything else (Message DB): ``SELECT max(global_position)`` every 20 ms, a
  lookup at the end of the primary-key index, shared by every consumer of the
  process (one probe, however many categories and projections wait).

A change wakes every waiter, which then reads its category; a spurious
wake-up (another category, a position write) costs one empty read. Waiters
also wake after ``timeout`` regardless, so a probe that misses a change
(a clock with coarse mtimes) delays a message by at most that.
"""

from __future__ import annotations

__all__ = ["StoreWatcher"]

import asyncio
import contextlib
import os
from pathlib import Path

from thalo.consumer.positions import store_head
from thalo.store import MessageStore
from thalo.store.url import parse_sqlite_url

Signature = object


class StoreWatcher:
    """Tells waiting consumers that the store changed since a signature they took."""

    def __init__(self, store: MessageStore, *, interval: float | None = None) -> None:
        self.store = store
        self._files: tuple[Path, Path] | None = None
        if store.dialect == "sqlite":
            location = parse_sqlite_url(store.url)
            if location.path is not None:
                path = location.path
                self._files = (path, path.with_name(path.name + "-wal"))
        self.interval = interval if interval is not None else (0.005 if self._files else 0.02)
        self._current: Signature | None = None
        self._changed = asyncio.Event()
        self._waiters = 0
        self._task: asyncio.Task[None] | None = None
        self.probes = 0

    async def signature(self) -> Signature:
        """The store's signature now; pass it to :meth:`wait` after an empty read."""
        self.probes += 1
        current: Signature
        if self._files is not None:
            current = tuple(_stat(p) for p in self._files)
        else:
            current = await store_head(self.store)
        if current != self._current:  # a change seen by anyone wakes everyone
            self._current = current
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        return current

    async def wait(self, since: Signature, stop: asyncio.Event, timeout: float) -> None:
        """Return once the signature differs from ``since``, on ``stop``, or after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiters += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="thalo-store-watcher")
        try:
            while not stop.is_set():
                if self._current is not None and self._current != since:
                    return
                left = deadline - loop.time()
                if left <= 0:
                    return
                changed = self._changed
                waiters = [
                    asyncio.ensure_future(changed.wait()),
                    asyncio.ensure_future(stop.wait()),
                ]
                try:
                    await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
        finally:
            self._waiters -= 1

    async def _poll(self) -> None:
        while self._waiters > 0:
            with contextlib.suppress(Exception):  # an outage: waiters time out and read
                await self.signature()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """Stop the probe task (it also stops by itself when nobody waits)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _stat(path: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_size, st.st_mtime_ns, st.st_ino)
