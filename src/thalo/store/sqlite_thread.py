"""A thread that owns one sqlite3 connection and runs jobs for asyncio callers.

sqlite3 calls block, so they never run on the event loop: callers enqueue a
job and await an asyncio future that the thread settles. The thread drains
everything queued at once, which is what lets the SQLite store commit many
callers' writes in one transaction (group commit): while one batch commits,
the next one accumulates.
"""

from __future__ import annotations

__all__ = ["Call", "ConnectionThread", "Job", "Session", "settle"]

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

from thalo.errors import StoreError

# A batch bigger than this is split, so one commit's latency stays bounded.
MAX_BATCH = 512


class Job:
    """Something for the connection thread to do, settled on the caller's loop."""

    __slots__ = ("future", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()


class Call(Job):
    """Run ``fn(connection)`` on the thread."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        super().__init__()
        self.fn = fn


class Session(Job):
    """Hold the connection for one caller's transaction until it commits or rolls back.

    ``future`` settles when the transaction has begun; each request then carries
    its own future. A ``read_only`` session takes no write lock.
    """

    __slots__ = ("read_only", "requests")

    def __init__(self, *, read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only
        self.requests: queue.SimpleQueue[SessionRequest] = queue.SimpleQueue()


class SessionRequest(Job):
    """``execute`` (with sql and params), ``commit`` or ``rollback``."""

    __slots__ = ("kind", "params", "sql")

    def __init__(self, kind: str, sql: str = "", params: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.kind = kind
        self.sql = sql
        self.params = params


def _resolve(items: Iterable[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, exc in items:
        if future.done():  # the caller was cancelled; the outcome has no one to go to
            continue
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)


def settle(outcomes: Iterable[tuple[Job, Any, BaseException | None]]) -> None:
    """Deliver outcomes to their loops, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for job, value, exc in outcomes:
        by_loop.setdefault(job.loop, []).append((job.future, value, exc))
    for loop, items in by_loop.items():
        # A closed loop means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, items)


class ConnectionThread(threading.Thread):
    """Owns ``connection``; runs queued jobs; hands write batches to ``write_batch``.

    ``write_batch(connection, jobs)`` returns one ``(job, value, exc)`` per job.
    ``serve_session(connection, session)`` runs a Session to its end.
    """

    def __init__(
        self,
        name: str,
        connection: sqlite3.Connection,
        write_type: type[Job] | None = None,
        write_batch: Callable[[sqlite3.Connection, list[Any]], list[Any]] | None = None,
        serve_session: Callable[[sqlite3.Connection, Session], None] | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.connection = connection
        self._queue: queue.SimpleQueue[list[Job | None] | None] = queue.SimpleQueue()
        # Jobs submitted during one turn of the event loop are handed over
        # together: one wake-up of the thread instead of one per caller.
        self._buffer: list[Job | None] = []
        self._flush_scheduled = False
        self._turn_size = 1  # jobs submitted during the last turn
        self._direct = 0  # of this turn's jobs, those handed over at once
        self._write_type = write_type
        self._write_batch = write_batch
        self._serve_session = serve_session
        self._closing = False
        self._working = False  # between taking jobs off the queue and settling the last
        self._lock = threading.Lock()

    @property
    def idle(self) -> bool:
        """Nothing queued, buffered or in progress (a hint: the thread may take work any time)."""
        return not (self._working or self._flush_scheduled or self._buffer) and self._queue.empty()

    def submit(self, job: Job) -> asyncio.Future[Any]:
        """Queue ``job``; raise StoreError if the store is closed."""
        with self._lock:
            if self._closing:
                raise StoreError("the message store is closed")
            schedule = not self._flush_scheduled
            self._flush_scheduled = True
            if schedule and self._turn_size == 1:
                # A caller that was alone last turn is likely alone again (one
                # writer awaiting each write): hand its job over now rather than
                # one loop turn later. Everything before it is already queued,
                # so the order of jobs is kept.
                self._queue.put([job])
                self._direct = 1
            else:
                self._buffer.append(job)
        if schedule:
            job.loop.call_soon(self._flush)
        return job.future

    def _flush(self) -> None:
        with self._lock:
            jobs, self._buffer = self._buffer, []
            self._flush_scheduled = False
            self._turn_size = len(jobs) + self._direct
            self._direct = 0
            if jobs:
                self._queue.put(jobs)

    def stop(self) -> None:
        """Finish what is queued, then close the connection and end the thread."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._buffer:
                self._queue.put(self._buffer)
                self._buffer = []
            self._queue.put(None)

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.connection.close()

    def _loop(self) -> None:
        while True:
            self._working = False
            item = self._queue.get()
            self._working = True
            jobs: list[Job | None] = [None] if item is None else item  # ours: _flush made it
            while len(jobs) < MAX_BATCH and jobs[-1] is not None and not self._queue.empty():
                item = self._queue.get()
                jobs.extend([None] if item is None else item)
            if self._write_batch is not None:
                writes = [job for job in jobs if type(job) is self._write_type]
                if writes:
                    try:
                        settle(self._write_batch(self.connection, writes))
                    except Exception as exc:  # a bug must not strand every caller
                        if self.connection.in_transaction:
                            self.connection.execute("ROLLBACK")
                        settle([(job, None, exc) for job in writes])
            for job in jobs:
                if job is None:
                    return
                if type(job) is Call:
                    self._call(job)
                elif type(job) is Session and self._serve_session is not None:
                    try:
                        self._serve_session(self.connection, job)
                    except Exception as exc:
                        if self.connection.in_transaction:
                            self.connection.execute("ROLLBACK")
                        settle([(job, None, exc)])

    def _call(self, job: Call) -> None:
        try:
            value = job.fn(self.connection)
        except BaseException as exc:
            settle([(job, None, exc)])
        else:
            settle([(job, value, None)])
