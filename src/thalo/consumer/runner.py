"""Running a projection: read each category in global order, deliver, retry, park, record.

One :class:`ProjectionRunner` runs one :class:`~thalo.consumer.Projection` or
:class:`~thalo.consumer.ReadModel` over a store, one reader task per category
(optionally as member ``m`` of a group of ``n``, Message DB's hash partition).

- Reads ``get_category_messages`` from the stored position in batches; while
  a full batch is handled the next one is already being read.
- When a read comes back short the reader waits on a :class:`StoreWatcher`
  and reads again as soon as anything is written (or after a second).
- A handler error stops the reader at that message: nothing after it is
  handled until it succeeds. It is logged with the stream, position and
  global position and retried with exponential back-off; after
  ``max_attempts`` the message is copied to ``{category}:parked-{name}`` (with
  a deterministic id, so parking twice records it once) and the reader moves
  on. An unavailable store is retried forever and never parks anything.
- On stop (``stop`` set: SIGTERM/SIGINT in the CLI) the message being handled
  finishes, and the position is recorded.
"""

from __future__ import annotations

__all__ = ["CategoryProgress", "ProjectionFailed", "ProjectionRunner", "parked_origin"]

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from thalo.consumer.consumer import idle
from thalo.consumer.database import ReadModelDatabase, open_read_model_database
from thalo.consumer.positions import (
    category_lag,
    ensure_position_table,
    list_projections,
    read_stream_position,
    read_table_position,
    register_projection,
    write_stream_position,
    write_table_position,
)
from thalo.consumer.projection import MessageHandler, Projection, ReadModel
from thalo.consumer.wakeup import StoreWatcher
from thalo.core import Message, NewMessage
from thalo.errors import DuplicateMessageId, StoreError, StoreUnavailable
from thalo.store import MessageStore

log = logging.getLogger("thalo.projection")

_PARKED_NAMESPACE = uuid.UUID("5b0f7c55-93a4-4a8e-9a55-0d1f0e6e7a11")
_PARKED_KEYS = (
    "parkedMessageId",
    "parkedMessageStreamName",
    "parkedMessagePosition",
    "parkedMessageGlobalPosition",
    "parkedMessageTime",
    "parkedReason",
    "parkedAttempts",
    "parkedConsumer",
)


class ProjectionFailed(Exception):
    """``replay-parked`` could not handle a parked message within its attempts."""


class _HandlerFailed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


@dataclass
class CategoryProgress:
    """One reader's figures, for progress lines and tests."""

    category: str
    position: int | None = None  # global position of the last message delivered
    handled: int = 0
    parked: int = 0
    caught_up: bool = False


def parked_origin(parked: Message) -> Message:
    """The original message a parked copy stands for (as its handler first received it)."""
    meta = dict(parked.metadata or {})
    origin = {k: meta.pop(k, None) for k in _PARKED_KEYS}
    from datetime import datetime

    when = origin["parkedMessageTime"]
    return Message(
        str(origin["parkedMessageId"]),
        str(origin["parkedMessageStreamName"]),
        parked.type,
        int(origin["parkedMessagePosition"] or 0),
        int(origin["parkedMessageGlobalPosition"] or 0),
        parked.data,
        meta or None,
        datetime.fromisoformat(when) if isinstance(when, str) else parked.time,
    )


async def _racing(step: Callable[[], Awaitable[None]]) -> None:
    """Run a ``CREATE … IF NOT EXISTS`` step, again if a concurrent process raced it.

    On PostgreSQL two transactions creating the same table both pass ``IF NOT
    EXISTS`` and one fails on a unique index of the catalog; the retry sees it.
    """
    for attempt in range(5):
        try:
            await step()
            return
        except StoreError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def _call(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


class ProjectionRunner:
    """Runs ``projection`` over ``store``; see the module docstring for the delivery rules."""

    def __init__(
        self,
        store: MessageStore,
        projection: Projection | ReadModel,
        *,
        group_member: int | None = None,
        group_size: int | None = None,
        watcher: StoreWatcher | None = None,
        target: str | None = None,
        idle_timeout: float = 1.0,
    ) -> None:
        if (group_member is None) != (group_size is None):
            raise ValueError("give both group_member and group_size, or neither")
        if (
            group_size is not None
            and group_member is not None
            and not 0 <= group_member < group_size
        ):
            raise ValueError(f"group_member must be in 0..{group_size - 1}")
        self.store = store
        self.projection = projection
        self.group_member = group_member
        self.group_size = group_size
        self.watcher = watcher or StoreWatcher(store)
        self._own_watcher = watcher is None
        self.target = target
        self.idle_timeout = idle_timeout
        self.progress = {c: CategoryProgress(c) for c in projection.categories}
        self.database: ReadModelDatabase | None = None

    # --- lifecycle ---------------------------------------------------------------

    async def _open(self) -> None:
        if isinstance(self.projection, ReadModel) and self.database is None:
            self.database = open_read_model_database(self.store, self.projection.database)
            await _racing(self._setup)

    async def _setup(self) -> None:
        assert self.database is not None and isinstance(self.projection, ReadModel)
        async with self.database.transaction() as tx:
            await ensure_position_table(tx)
            if self.projection.setup_hook is not None:
                await _call(self.projection.setup_hook(tx))

    async def _close(self) -> None:
        if self.database is not None:
            await self.database.close()
            self.database = None
        if self._own_watcher:
            await self.watcher.close()

    def _table_in_store(self) -> bool:
        return isinstance(self.projection, ReadModel) and self.projection.database is None

    async def register(self) -> None:
        """Enter this projection in the store's catalog (``thalo projection status``)."""
        await _racing(
            lambda: register_projection(
                self.store,
                name=self.projection.name,
                kind="read_model" if isinstance(self.projection, ReadModel) else "projection",
                categories=self.projection.categories,
                target=self.target,
                group_size=self.group_size,
                table_in_store=self._table_in_store(),
            )
        )

    async def run(
        self,
        stop: asyncio.Event | None = None,
        *,
        until_caught_up: bool = False,
        register: bool = True,
    ) -> None:
        """Deliver until ``stop`` is set (or, ``until_caught_up``, until every read is empty)."""
        stop = stop or asyncio.Event()
        await self._open()
        try:
            if register:
                await self.register()
            async with asyncio.TaskGroup() as group:
                for cat in self.projection.categories:
                    group.create_task(self._read(cat, stop, until_caught_up))
        finally:
            await self._close()

    # --- positions ---------------------------------------------------------------

    def _position_stream(self, cat: str) -> str:
        return self.projection.position_stream(cat, self.group_member, self.group_size)

    async def _start_position(self, cat: str) -> int:
        """The next global position to read: after the recorded one.

        A group member also starts no earlier than the ungrouped position (an
        ungrouped run, e.g. a rebuild, covered every member's share up to it).
        """
        streams = [self._position_stream(cat)]
        if self.group_size is not None:
            streams.append(self.projection.position_stream(cat))
        found: list[int] = []
        for stream in streams:
            if self.database is not None:
                async with self.database.transaction() as tx:
                    value = await read_table_position(tx, stream)
            else:
                value = await read_stream_position(self.store, stream)
            if value is not None:
                found.append(value)
        return max(found, default=0) + 1

    # --- reading -----------------------------------------------------------------

    async def _fetch(self, cat: str, position: int) -> list[Message]:
        return await self.store.get_category_messages(
            cat,
            position,
            self.projection.batch_size,
            consumer_group_member=self.group_member,
            consumer_group_size=self.group_size,
        )

    async def _read(self, cat: str, stop: asyncio.Event, until_caught_up: bool) -> None:
        progress = self.progress[cat]
        position = await self._start_position(cat)
        progress.position = position - 1 if position > 1 else None
        recorder = _StreamRecorder(self, cat)
        pending: asyncio.Task[list[Message]] | None = None
        signature: object = None
        short = True  # the last read was not full: take a signature before the next
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if pending is not None:
                        batch, pending = await pending, None
                    else:
                        if short and not until_caught_up:
                            signature = await self.watcher.signature()
                        batch = await self._fetch(cat, position)
                    failures = 0
                except StoreUnavailable as exc:
                    failures += 1
                    log.warning("projection %s: reading %s failed: %s", self._who, cat, exc)
                    await idle(stop, min(0.1 * 2**failures, 5.0))
                    continue
                short = len(batch) < self.projection.batch_size
                if not batch:
                    progress.caught_up = True
                    if until_caught_up:
                        return
                    await self.watcher.wait(signature, stop, self.idle_timeout)
                    continue
                progress.caught_up = False
                if not short:
                    pending = asyncio.create_task(self._fetch(cat, batch[-1].global_position + 1))
                if isinstance(self.projection, ReadModel):
                    await self._deliver_transactional(self.projection, cat, batch, stop)
                else:
                    await self._deliver(self.projection, cat, batch, stop, recorder)
                if progress.position is not None:
                    position = progress.position + 1
                if stop.is_set():
                    break
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            await asyncio.shield(recorder.flush())

    @property
    def _who(self) -> str:
        return self.projection.identity(self.group_member, self.group_size)

    # --- failures ----------------------------------------------------------------

    def _log_failure(self, message: Message, error: BaseException, attempts: int) -> None:
        limit = self.projection.max_attempts
        log.error(
            "projection %s: %s failed on %s at position %d (global position %d), "
            "attempt %d%s: %s: %s",
            self._who,
            message.type,
            message.stream_name,
            message.position,
            message.global_position,
            attempts,
            "" if limit is None else f" of {limit}",
            type(error).__name__,
            error,
        )

    def _exhausted(self, attempts: int) -> bool:
        limit = self.projection.max_attempts
        return limit is not None and attempts >= limit

    async def _backoff(self, attempts: int, stop: asyncio.Event) -> None:
        p = self.projection
        await idle(stop, min(p.retry_delay * 2 ** (attempts - 1), p.max_retry_delay))

    async def _park(self, cat: str, message: Message, error: BaseException, attempts: int) -> None:
        """Copy ``message`` to the parked stream (once, whatever happens), with why."""
        metadata = dict(message.metadata or {})
        metadata.update(
            parkedMessageId=message.id,
            parkedMessageStreamName=message.stream_name,
            parkedMessagePosition=message.position,
            parkedMessageGlobalPosition=message.global_position,
            parkedMessageTime=message.time.isoformat(),
            parkedReason=f"{type(error).__name__}: {error}"[:2000],
            parkedAttempts=attempts,
            parkedConsumer=self._who,
        )
        parked_id = str(uuid.uuid5(_PARKED_NAMESPACE, f"{self.projection.name}/{message.id}"))
        stream = self.projection.parked_stream(cat)
        with contextlib.suppress(DuplicateMessageId):
            await self.store.write_message(
                stream, NewMessage(message.type, message.data, metadata, parked_id)
            )
        self.progress[cat].parked += 1
        log.error(
            "projection %s: parked %s (global position %d) in %s after %d attempts",
            self._who,
            message.stream_name,
            message.global_position,
            stream,
            attempts,
        )

    # --- at-least-once delivery ----------------------------------------------------

    async def _deliver(
        self,
        projection: Projection,
        cat: str,
        batch: Sequence[Message],
        stop: asyncio.Event,
        recorder: _StreamRecorder,
    ) -> None:
        progress = self.progress[cat]
        handlers = projection.handlers
        for message in batch:
            if stop.is_set():
                return
            handler = handlers.get(message.type)
            if handler is not None:
                try:
                    result = handler(message)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    if not await self._retry(cat, message, handler, exc, stop):
                        return  # stopped while retrying: the position stays before it
            progress.position = message.global_position
            progress.handled += 1
            recorder.last = message.global_position
            recorder.unrecorded += 1
            if recorder.unrecorded >= recorder.every:
                recorder.flush_soon()

    async def _retry(
        self,
        cat: str,
        message: Message,
        handler: MessageHandler,
        error: Exception,
        stop: asyncio.Event,
    ) -> bool:
        """Retry a failed message with back-off; False when stopped before success or parking."""
        attempts = 0
        while True:
            if isinstance(error, StoreUnavailable):
                log.warning("projection %s: store unavailable: %s", self._who, error)
                await idle(stop, 1.0)
            else:
                attempts += 1
                self._log_failure(message, error, attempts)
                if self._exhausted(attempts):
                    await self._park(cat, message, error, attempts)
                    return True
                await self._backoff(attempts, stop)
            if stop.is_set():
                return False
            try:
                await _call(handler(message))
                return True
            except Exception as exc:
                error = exc

    # --- exactly-once delivery -------------------------------------------------------

    async def _apply(
        self, model: ReadModel, cat: str, chunk: Sequence[Message], stop: asyncio.Event
    ) -> int:
        """Handle ``chunk`` in one transaction with the position; how many were applied."""
        assert self.database is not None
        handlers = model.handlers
        key = self._position_stream(cat)
        async with self.database.transaction() as tx:
            done = 0
            for index, message in enumerate(chunk):
                if done and stop.is_set():
                    break
                handler = handlers.get(message.type)
                if handler is not None:
                    try:
                        result = handler(message, tx)
                        if result is not None and inspect.isawaitable(result):
                            await result
                    except StoreUnavailable:
                        raise
                    except Exception as exc:
                        raise _HandlerFailed(index, exc) from exc
                done += 1
            if done:
                await write_table_position(tx, key, chunk[done - 1].global_position)
        return done

    async def _deliver_transactional(
        self, model: ReadModel, cat: str, batch: Sequence[Message], stop: asyncio.Event
    ) -> None:
        progress = self.progress[cat]
        start, limit = 0, len(batch)
        attempts: dict[int, int] = {}
        outages = 0
        while start < len(batch) and not stop.is_set():
            chunk = batch[start : start + limit]
            try:
                done = await self._apply(model, cat, chunk, stop)
            except _HandlerFailed as failed:
                message = chunk[failed.index]
                count = attempts[message.global_position] = (
                    attempts.get(message.global_position, 0) + 1
                )
                self._log_failure(message, failed.error, count)
                if failed.index > 0:
                    limit = failed.index  # commit what precedes it, then it alone
                    continue
                limit = 1
                if self._exhausted(count):
                    await self._park(cat, message, failed.error, count)
                    assert self.database is not None
                    async with self.database.transaction() as tx:
                        await write_table_position(
                            tx, self._position_stream(cat), message.global_position
                        )
                    progress.position = message.global_position
                    start, limit = start + 1, len(batch)
                    continue
                await self._backoff(count, stop)
                continue
            except StoreUnavailable as exc:
                outages += 1
                log.warning("projection %s: database unavailable: %s", self._who, exc)
                await idle(stop, min(0.1 * 2**outages, 5.0))
                continue
            if done:
                progress.position = chunk[done - 1].global_position
                progress.handled += done
            start, limit = start + done, len(batch)

    # --- parked messages -----------------------------------------------------------------

    async def replay_parked(self) -> int:
        """Deliver every parked message not yet replayed, in order; return how many.

        Progress is kept in ``{category}:parked+position-{name}`` (a read model:
        in its position table, in the same transaction). A message that still
        fails after ``max_attempts`` stops the replay (``ProjectionFailed``);
        running it again starts from that message.
        """
        await self._open()
        replayed = 0
        stop = asyncio.Event()
        try:
            for cat in self.projection.categories:
                parked = self.projection.parked_stream(cat)
                key = self.projection.parked_position_stream(cat)
                while True:
                    start = await self._parked_start(key)
                    batch = await self.store.get_stream_messages(parked, start, 100)
                    if not batch:
                        break
                    for copy in batch:
                        await self._replay_one(cat, key, copy, stop)
                        replayed += 1
        finally:
            await self._close()
        return replayed

    async def _parked_start(self, key: str) -> int:
        if self.database is not None:
            async with self.database.transaction() as tx:
                value = await read_table_position(tx, key)
        else:
            value = await read_stream_position(self.store, key)
        return 0 if value is None else value + 1

    async def _replay_one(self, cat: str, key: str, copy: Message, stop: asyncio.Event) -> None:
        message = parked_origin(copy)
        attempts = 0
        while True:
            try:
                if isinstance(self.projection, ReadModel):
                    assert self.database is not None
                    handler = self.projection.handlers.get(message.type)
                    async with self.database.transaction() as tx:
                        if handler is not None:
                            await _call(handler(message, tx))
                        await write_table_position(tx, key, copy.position)
                else:
                    plain = self.projection.handlers.get(message.type)
                    if plain is not None:
                        await _call(plain(message))
                    await write_stream_position(self.store, key, copy.position)
                return
            except Exception as exc:
                attempts += 1
                self._log_failure(message, exc, attempts)
                if self._exhausted(attempts):
                    raise ProjectionFailed(
                        f"parked message {message.stream_name} at position {message.position} "
                        f"(global position {message.global_position}) still fails after "
                        f"{attempts} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                await self._backoff(attempts, stop)

    # --- rebuild -------------------------------------------------------------------------

    async def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Reset (the projection's hook and every position) and replay to the end; return count.

        Runs as one ungrouped consumer; afterwards every group member known to
        the catalog starts where the rebuild ended. Stop the projection's
        ``run`` processes first.
        """
        if self.group_size is not None:
            raise ValueError("rebuild runs ungrouped")
        name = self.projection.name
        catalog = {e.name: e for e in await list_projections(self.store)}
        size = catalog[name].group_size if name in catalog else None
        await self._open()
        try:
            members = [
                self.projection.position_stream(cat, m, size)
                for cat in self.projection.categories
                for m in range(size or 0)
            ]
            plain = [self.projection.position_stream(cat) for cat in self.projection.categories]
            if isinstance(self.projection, ReadModel):
                assert self.database is not None
                async with self.database.transaction() as tx:
                    if self.projection.reset_hook is not None:
                        await _call(self.projection.reset_hook(tx))
                    for stream in plain + members:
                        await write_table_position(tx, stream, 0)
            else:
                if self.projection.reset_hook is not None:
                    await _call(self.projection.reset_hook())
                for stream in plain:
                    await write_stream_position(self.store, stream, 0)
            handled_before = 0

            async def report() -> None:
                nonlocal handled_before
                while True:
                    await asyncio.sleep(0.1)
                    now = sum(p.handled for p in self.progress.values())
                    if progress is not None and now > handled_before:
                        progress(now - handled_before)
                    handled_before = now

            reporter = asyncio.create_task(report())
            try:
                await self.run(until_caught_up=True, register=False)
                await self._open()
            finally:
                reporter.cancel()
            total = sum(p.handled for p in self.progress.values())
            if progress is not None and total > handled_before:
                progress(total - handled_before)
            # Group members resume where the rebuild ended.
            for cat in self.projection.categories:
                end = self.progress[cat].position or 0
                for m in range(size or 0):
                    stream = self.projection.position_stream(cat, m, size)
                    if isinstance(self.projection, ReadModel):
                        assert self.database is not None
                        async with self.database.transaction() as tx:
                            await write_table_position(tx, stream, end)
                    else:
                        await write_stream_position(self.store, stream, end)
            return total
        finally:
            await self._close()

    async def lag(self) -> dict[str, int]:
        """Per category: messages after this consumer's position (all members' shares)."""
        return {
            cat: await category_lag(self.store, cat, p.position) for cat, p in self.progress.items()
        }


class _StreamRecorder:
    """Writes a category's position stream every N messages and on stop (Message DB's way)."""

    def __init__(self, runner: ProjectionRunner, cat: str) -> None:
        self.runner = runner
        self.category = cat
        self.stream = runner._position_stream(cat)
        self.every = runner.projection.position_update_interval
        self.unrecorded = 0
        self.last: int | None = None
        self.recorded: int | None = None
        self._task: asyncio.Task[None] | None = None

    def flush_soon(self) -> None:
        """Record the position in a task of its own, so that handling goes on meanwhile.

        At most one such write is in flight; later calls while it runs do
        nothing (the next threshold or the final flush records the newer one).
        """
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self._write()
        except Exception as exc:  # the next flush tries again
            log.warning("projection: recording position in %s failed: %s", self.stream, exc)

    async def flush(self) -> None:
        """Wait for a write in flight, then record the last position handled if it moved."""
        if self._task is not None:
            await self._task
            self._task = None
        await self._write()

    async def _write(self) -> None:
        runner = self.runner
        if isinstance(runner.projection, ReadModel):  # read models: for status only
            self.last = runner.progress[self.category].position
        last = self.last
        if last is None or last == self.recorded:
            return
        await write_stream_position(runner.store, self.stream, last)
        self.recorded = last
        self.unrecorded = 0
