"""The runtime: handles commands against published aggregates (shared/DESIGN.md, "The flow").

For one command: resolve the aggregate's newest module, validate the payload
against its ESDL, take the stream's lock, get the entity (cached, or rebuilt
from its latest snapshot plus the events after it), let the guest decide and
apply in one call (``execute``, inline, outside any store transaction),
validate the events it returned, and append them with the expected version the
entity was built from. On a concurrency conflict the entity is rebuilt from the
store (it already applied the lost events) and the command runs again, a
bounded number of times; for a while afterwards it decides and applies in two
calls, so that further conflicts cost only a catch-up.
"""

from __future__ import annotations

__all__ = [
    "REPLY_CATEGORY",
    "REPLY_FAILED",
    "REPLY_SUCCEEDED",
    "SNAPSHOT_TYPE",
    "EntityState",
    "Recorded",
    "Runtime",
    "Submitted",
]

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from thalo.core import (
    EntityState,
    Message,
    NewMessage,
    RawMessage,
    command_stream_name,
    entity_stream_name,
    new_message_id,
    snapshot_stream_name,
    stream_name,
)
from thalo.core import metadata as keys
from thalo.errors import (
    CommandFailed,
    CommandRejected,
    CommandTimeout,
    ConcurrencyExhausted,
    DuplicateMessageId,
    GuestError,
    GuestOutOfMemory,
    GuestOutputInvalid,
    GuestTimeout,
    IdempotencyKeyReused,
    PayloadInvalid,
    ThaloError,
    UnknownCommand,
    UsageError,
    WrongExpectedVersion,
)
from thalo.registry import Registry
from thalo.runtime.cache import EntityCache, HydratedEntity, StreamLocks
from thalo.runtime.modules import LoadedModule, ModuleSet
from thalo.runtime.stats import RuntimeStats
from thalo.store import MessageStore
from thalo.wasm._errors import (
    EntityLost,
    GuestAnswer,
    GuestDecodeFailed,
    GuestIgnored,
    GuestRejected,
    GuestUnknownCommand,
    InstanceBusy,
)

if TYPE_CHECKING:
    from thalo.wasm import Limits

SNAPSHOT_TYPE = "Snapshot"
# After losing a race for its stream, an entity decides and applies in two guest
# calls for this many commands: a lost race then costs a catch-up, not a rebuild.
CONTENDED_COMMANDS = 100
log = logging.getLogger("thalo.runtime")
REPLY_CATEGORY = "thaloReply"
REPLY_SUCCEEDED = "CommandSucceeded"
REPLY_FAILED = "CommandFailed"
_T = TypeVar("_T")
_SUBMIT_NAMESPACE = uuid.UUID("5f0c3a8e-2b1d-4e7a-9c1f-7d2b6a4e8c10")
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Submitted:
    """A command written to a command stream, and where its outcome will be reported."""

    aggregate: str
    entity_id: str
    command: str
    message_id: str
    stream_name: str
    position: int
    reply_stream_name: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` and the HTTP API."""
        return {
            "aggregate": self.aggregate,
            "id": self.entity_id,
            "command": self.command,
            "message_id": self.message_id,
            "stream_name": self.stream_name,
            "position": self.position,
            "reply_stream_name": self.reply_stream_name,
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    """Where a command's events landed: ``count`` events from ``position`` of ``stream_name``.

    ``duplicate`` is true when the command id had been executed before and
    nothing new was written. ``version`` is the stream version the command
    left (what an HTTP ``ETag`` reports; -1 for a stream still empty).
    ``events`` are the recorded messages when they were read back.
    """

    stream_name: str
    position: int
    count: int
    version: int
    duplicate: bool = False
    events: tuple[Message, ...] = ()


class Runtime:
    """Executes commands against aggregates published in ``store``'s registry.

    ``cache_size`` bounds the hydrated entities kept in memory; a snapshot is
    written every ``snapshot_every`` events of an entity (0: never);
    ``max_retries`` bounds re-runs after concurrency conflicts; the newest
    command ids of each entity (``idempotency_window``) are remembered so that a
    repeated ``command_id`` returns the first result instead of running again.
    """

    def __init__(
        self,
        store: MessageStore,
        *,
        registry: Registry | None = None,
        cache_size: int = 10_000,
        snapshot_every: int = 100,
        max_retries: int = 10,
        idempotency_window: int = 1_000,
        limits: Limits | None = None,
        guest_threads: int = 2,
        module_check_interval: float = 1.0,
        replay_batch: int = 5_000,
    ) -> None:
        self.store = store
        self.registry = registry or Registry(store)
        self.modules = ModuleSet(
            self.registry,
            limits=limits,
            max_instances=guest_threads,
            check_interval=module_check_interval,
        )
        self.cache = EntityCache(cache_size)
        self.snapshot_every = snapshot_every
        self.max_retries = max_retries
        self.idempotency_window = idempotency_window
        self.replay_batch = replay_batch
        self._locks = StreamLocks()
        self._executor = ThreadPoolExecutor(guest_threads, thread_name_prefix="thalo-guest")
        self._closed = False
        self.stats = RuntimeStats()
        self._bad_snapshots: set[str] = set()  # ids of snapshots that failed to restore
        # (stream, module version) whose guest failed to snapshot: not asked again
        self._no_snapshots: set[tuple[str, str]] = set()

    # --- lifecycle -------------------------------------------------------------

    async def close(self) -> None:
        """Drop cached entities and loaded modules; idempotent. The store stays open."""
        if self._closed:
            return
        self._closed = True
        self.cache.clear()
        self.modules.close()
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- commands --------------------------------------------------------------

    async def execute(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        causation: Message | None = None,
        expected_version: int | None = None,
    ) -> list[Message]:
        """Run ``command`` on entity ``entity_id``; return the events it recorded.

        ``causation`` is the command message when the command came through a
        command stream. Raises ``UnknownAggregate``, ``UnknownCommand``,
        ``PayloadInvalid`` (the payload, or the events the guest returned),
        ``CommandRejected``, a ``GuestError`` (trap, timeout, memory) and
        ``ConcurrencyExhausted``, and ``WrongExpectedVersion`` when
        ``expected_version`` is given and the stream is at another version (an
        HTTP ``If-Match``). Nothing is written unless the command succeeds.
        The events are read back from the store (global positions, times); use
        :meth:`record` to skip that read.
        """
        recorded = await self.record(
            aggregate,
            entity_id,
            command,
            payload,
            command_id=command_id,
            metadata=metadata,
            causation=causation,
            expected_version=expected_version,
            read_back=True,
        )
        return list(recorded.events)

    async def record(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        causation: Message | None = None,
        expected_version: int | None = None,
        read_back: bool = False,
    ) -> Recorded:
        """Like :meth:`execute`, but returns where the events landed; with ``read_back``
        also the recorded messages.

        A repeated ``command_id`` answers the first execution's events; when those
        cannot be this command's (their types are not among its events), the id
        was reused for another command: ``IdempotencyKeyReused``.
        """
        recorded = await self._record(
            aggregate,
            entity_id,
            command,
            payload,
            command_id=command_id,
            metadata=metadata,
            causation=causation,
            expected_version=expected_version,
        )
        if not read_back or recorded.count == 0:
            return recorded
        events = await self._read_range(recorded.stream_name, recorded.position, recorded.count)
        if recorded.duplicate:
            module = await self.modules.current(aggregate)
            spec = module.schema.commands.get(command)
            allowed = {e.name for e in spec.events} if spec is not None else set()
            strangers = sorted({m.type for m in events} - allowed)
            if strangers:
                raise IdempotencyKeyReused(
                    str(command_id), recorded.stream_name, command, strangers
                )
        return replace(recorded, events=tuple(events))

    async def _record(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None,
        *,
        command_id: str | None,
        metadata: Mapping[str, Any] | None,
        causation: Message | None,
        expected_version: int | None,
    ) -> Recorded:
        body = dict(payload or {})
        module = await self.modules.current(aggregate)
        module.schema.validate_command(command, body)
        stream = entity_stream_name(module.name, entity_id)
        async with self._locks.hold(stream):
            entity = await self._entity(module, stream, entity_id)
            stats = self.stats
            caught_up = False
            for _attempt in range(self.max_retries + 1):
                if command_id is not None and command_id in entity.commands:
                    first, count = entity.commands[command_id]
                    return Recorded(stream, first, count, entity.version, duplicate=True)
                if expected_version is not None and entity.version != expected_version:
                    if entity.version < expected_version and not caught_up:
                        # The cache may be behind writes made elsewhere: look once.
                        entity = await self._catch_up(entity, entity_id)
                        caught_up = True
                        continue
                    raise WrongExpectedVersion(stream, expected_version, entity.version)
                # Usually one guest call decides and applies (``execute``); while the
                # stream is contended, decide only and apply once the events are stored,
                # so that losing a race costs a catch-up instead of a rebuild.
                applied = entity.contended == 0
                try:
                    events = await self._decide(
                        entity, entity_id, command, body, causation, apply=applied
                    )
                except EntityLost:
                    # Another entity's trap took this one's instance down: rebuild, retry.
                    entity = await self._entity(module, stream, entity_id)
                    continue
                if not events:
                    return Recorded(stream, entity.version + 1, 0, entity.version)
                messages = self._messages(entity, events, command_id, metadata, causation)
                started = perf_counter()
                try:
                    last = await self.store.write_messages(stream, messages, entity.version)
                except WrongExpectedVersion:
                    stats.conflicts += 1
                    if applied:  # the guest's state holds events that were not stored
                        entity = await self._rebuild(entity, entity_id)
                    else:
                        entity = await self._catch_up(entity, entity_id)
                    entity.contended = CONTENDED_COMMANDS
                    continue
                except BaseException:
                    if applied:  # stored or not, nobody can tell here: start afresh
                        self.cache.discard(stream)
                    raise
                stats.store_writes.observe(perf_counter() - started)
                first = last - len(messages) + 1
                if not applied:
                    entity.contended -= 1
                    if not await self._apply_written(entity, events):
                        return Recorded(stream, first, len(messages), last)
                self._recorded(entity, len(events), first, command_id)
                await self._maybe_snapshot(entity)
                return Recorded(stream, first, len(messages), last)
            raise ConcurrencyExhausted(
                f"{aggregate} {entity_id!r}: {command} lost the race for the stream "
                f"{self.max_retries + 1} times; other writers keep changing it"
            )

    async def _decide(
        self,
        entity: HydratedEntity,
        entity_id: str,
        command: str,
        payload: dict[str, Any],
        causation: Message | None,
        *,
        apply: bool,
    ) -> list[tuple[str, dict[str, Any]]]:
        """The guest's events for ``command``, checked against the schema.

        With ``apply`` the guest has also applied them (``execute``): if they are
        not stored after all, the entity must be rebuilt.
        """

        ctx = {
            "streamName": entity.stream_name,
            "messageId": causation.id if causation else None,
            "position": causation.position if causation else None,
            "globalPosition": causation.global_position if causation else None,
            "metadata": (causation.metadata or {}) if causation else {},
            "time": (causation.time if causation else datetime.now(UTC)).isoformat(),
        }
        schema = entity.module.schema
        decide = entity.wasm.execute if apply else entity.wasm.handle
        try:
            events = await self._call(entity.module, command, decide, ctx, command, payload)
        except GuestRejected as exc:
            raise CommandRejected(schema.name, entity_id, command, exc.reason) from None
        except GuestIgnored:
            return []
        except GuestUnknownCommand:
            raise UnknownCommand(schema.name, command, tuple(schema.commands)) from None
        except GuestDecodeFailed as exc:
            # The host could not read the guest's answer (or the guest the host's
            # request); ``execute`` may have applied events that will never be stored.
            self.cache.discard(entity.stream_name)
            self.stats.guest_invalid_output += 1
            raise GuestOutputInvalid(
                f"{schema.name} {entity.module.version} answered {command!r} with output the "
                f"host cannot decode: {exc.detail or exc}"
            ) from None
        except GuestError as exc:  # a trap, a timeout, or EntityLost: this entity must be rebuilt
            self.cache.discard(entity.stream_name)
            self._count_fault(exc)
            raise
        try:
            _check_shapes(events)
            schema.validate_command_events(command, events)
        except (GuestOutputInvalid, PayloadInvalid) as exc:
            if apply:  # the guest applied events that will never be stored
                self.cache.discard(entity.stream_name)
            self.stats.guest_invalid_output += 1
            violations = exc.violations if isinstance(exc, PayloadInvalid) else ()
            detail = exc.message if isinstance(exc, GuestOutputInvalid) else "break the schema:"
            raise GuestOutputInvalid(
                f"the events {schema.name} {entity.module.version} returned for {command!r} "
                f"{detail}",
                violations,
            ) from None
        except BaseException:
            if apply:  # whatever failed, the guest's state is not the store's: start afresh
                self.cache.discard(entity.stream_name)
            raise
        return events

    def _messages(
        self,
        entity: HydratedEntity,
        events: Sequence[tuple[str, dict[str, Any]]],
        command_id: str | None,
        metadata: Mapping[str, Any] | None,
        causation: Message | None,
    ) -> list[NewMessage]:
        meta: dict[str, Any] = dict(metadata or {})
        if causation is not None:
            meta[keys.CAUSATION_MESSAGE_STREAM_NAME] = causation.stream_name
            meta[keys.CAUSATION_MESSAGE_POSITION] = causation.position
            meta[keys.CAUSATION_MESSAGE_GLOBAL_POSITION] = causation.global_position
            for key in (keys.CORRELATION_STREAM_NAME, keys.REPLY_STREAM_NAME):
                value = causation.meta(key)
                if value is not None:
                    meta.setdefault(key, value)
        if command_id is not None:
            meta[keys.COMMAND_ID] = command_id
        meta[keys.MODULE_VERSION] = entity.module.version
        return [NewMessage(type=t, data=d, metadata=meta) for t, d in events]

    async def _apply_written(
        self, entity: HydratedEntity, events: Sequence[tuple[str, dict[str, Any]]]
    ) -> bool:
        """Apply stored events to a contended entity's guest state; False if that failed."""
        try:
            await self._call(entity.module, ":apply", entity.wasm.apply, list(events))
        except ThaloError as exc:
            # The events are recorded, so the command succeeded; only the cached state
            # is not to be trusted. The next command rebuilds it from the stream.
            log.warning("%s: applying its new events failed (%s); evicted", entity.stream_name, exc)
            self.cache.discard(entity.stream_name)
            return False
        return True

    def _recorded(
        self, entity: HydratedEntity, count: int, first: int, command_id: str | None
    ) -> None:
        """Account for ``count`` events stored from ``first`` and applied to the guest."""
        entity.version = first + count - 1
        entity.since_snapshot += count
        if command_id is not None:
            entity.remember(command_id, first, count, self.idempotency_window)

    async def _read_range(self, stream: str, first: int, count: int) -> list[Message]:
        if count == 0:
            return []
        return await self.store.get_stream_messages(stream, first, count)

    # --- entities --------------------------------------------------------------

    async def _entity(self, module: LoadedModule, stream: str, entity_id: str) -> HydratedEntity:
        cached = self.cache.get(stream)
        if cached is not None and cached.module is module:
            self.stats.cache_hits += 1
            return cached
        self.stats.cache_misses += 1
        if cached is not None:  # an older module version: rebuild with the new one
            self.cache.discard(stream)
        entity = await self._hydrate(module, stream, entity_id)
        self.cache.put(entity)
        return entity

    async def _rebuild(self, entity: HydratedEntity, entity_id: str) -> HydratedEntity:
        """Drop ``entity``'s guest state and rebuild it from the store (snapshot + events)."""
        self.cache.discard(entity.stream_name)
        entity.wasm.close()  # idempotent; the cache may have dropped it already
        self.stats.rebuilds += 1
        rebuilt = await self._hydrate(entity.module, entity.stream_name, entity_id)
        self.cache.put(rebuilt)
        return rebuilt

    async def _catch_up(self, entity: HydratedEntity, entity_id: str) -> HydratedEntity:
        """Apply what other writers appended since ``entity.version``."""
        try:
            await self._replay(entity, entity.version + 1)
        except GuestError:
            entity = await self._rebuild(entity, entity_id)
        return entity

    async def _hydrate(
        self,
        module: LoadedModule,
        stream: str,
        entity_id: str,
        *,
        until: Callable[[RawMessage], bool] | None = None,
        snapshot: bool = True,
        snapshot_before: int | None = None,
        progress: Progress | None = None,
    ) -> HydratedEntity:
        """An entity rebuilt from its latest usable snapshot and the events after it.

        ``snapshot_before`` restricts snapshots to those at or before a position;
        ``snapshot=False`` replays every event.
        """
        entity: HydratedEntity | None = None
        if snapshot:
            entity = await self._restore(module, entity_id, stream, snapshot_before)
        if entity is None:
            wasm = await self._guest(module.wasm.entity, entity_id)
            entity = HydratedEntity(stream, module, wasm)
        await self._replay(entity, entity.version + 1, until=until, progress=progress)
        return entity

    async def _restore(
        self, module: LoadedModule, entity_id: str, stream: str, before: int | None
    ) -> HydratedEntity | None:
        snapshots = snapshot_stream_name(module.name, entity_id)
        if before is None:
            latest = await self.store.get_last_stream_message(snapshots, SNAPSHOT_TYPE)
            candidates = [latest] if latest is not None else []
        else:
            candidates = await self.store.get_stream_messages(snapshots, 0, -1)
            candidates.reverse()
        for message in candidates:
            data = message.data
            if data.get("moduleVersion") != module.version:
                continue  # another version's state layout: replay instead
            version = int(data["version"])
            if before is not None and version > before:
                continue
            if message.id in self._bad_snapshots:
                return None
            try:
                wasm = await self._guest(
                    module.wasm.restore, entity_id, orjson.dumps(data["state"]).decode()
                )
            except (GuestError, GuestAnswer) as exc:
                # Whatever went wrong (a decode error, a trap, a loop), replay instead,
                # and never try this snapshot again in this runtime.
                self._bad_snapshots.add(message.id)
                self.stats.restore_failures += 1
                log.warning(
                    "%s: snapshot at version %d not restored (%s); replaying instead",
                    stream,
                    version,
                    exc,
                )
                return None
            commands = data.get("commands") or {}
            entity = HydratedEntity(stream, module, wasm, version=version)
            for command_id, (first, count) in commands.items():
                entity.remember(command_id, int(first), int(count), self.idempotency_window)
            return entity
        return None

    async def _replay(
        self,
        entity: HydratedEntity,
        position: int,
        *,
        until: Callable[[RawMessage], bool] | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Apply the stream's events from ``position`` (while ``until`` holds), in batches.

        The next batch is read while the guest applies the current one: the read
        waits on the store, the apply runs on a worker thread without the GIL.
        A batch read goes to the guest in calls of at most ~1 MiB of events (an event
        larger than that alone), each with a budget of one call per event applied:
        every event was once applied by one command within those limits, so a stream
        the module wrote can always be rebuilt by it. Each event carries its
        ``position`` (the guest seeds its randomness with it).
        """
        size = self.replay_batch
        max_bytes = 1 << 20
        stream = entity.stream_name
        wasm = entity.wasm
        wasm.next_position = position
        reading: asyncio.Task[list[RawMessage]] | None = asyncio.ensure_future(
            self.store.get_stream_raw(stream, position, size)
        )
        try:
            while reading is not None:
                batch = await reading
                reading = None
                more = len(batch) == size
                if until is not None:
                    stop = next((i for i, m in enumerate(batch) if not until(m)), None)
                    if stop is not None:
                        batch, more = batch[:stop], False
                if not batch:
                    return
                if more:
                    reading = asyncio.ensure_future(
                        self.store.get_stream_raw(stream, batch[-1].position + 1, size)
                    )
                start = 0
                while start < len(batch):
                    parts: list[bytes] = []
                    taken = 0
                    end = start
                    while end < len(batch) and (end == start or taken < max_bytes):
                        m = batch[end]
                        part = (
                            b'{"type":'
                            + orjson.dumps(m.type)
                            + b',"position":'
                            + str(m.position).encode()
                            + b',"data":'
                            + m.data.encode()
                            + b"}"
                        )
                        taken += len(part)
                        if end > start and taken > max_bytes:
                            break
                        parts.append(part)
                        end += 1
                    chunk = batch[start:end]
                    body = b"[" + b",".join(parts) + b"]"
                    count = len(chunk)
                    await self._guest(lambda: wasm.apply(body, count=count))  # noqa: B023
                    start = end
                    for message in chunk:
                        # Only events of commands sent with an id carry one: skip the rest.
                        if message.metadata is None or keys.COMMAND_ID not in message.metadata:
                            continue
                        command_id = orjson.loads(message.metadata).get(keys.COMMAND_ID)
                        if isinstance(command_id, str):
                            first, n = entity.commands.get(command_id, (message.position, 0))
                            entity.remember(command_id, first, n + 1, self.idempotency_window)
                    entity.version = chunk[-1].position
                    wasm.next_position = entity.version + 1
                    entity.since_snapshot += count
                    if progress is not None:
                        progress(count)
        finally:
            if reading is not None:  # an apply failed while a read was in flight
                with contextlib.suppress(Exception):
                    await reading

    async def _maybe_snapshot(self, entity: HydratedEntity) -> None:
        """Snapshot when one is due. Never fails: the command's events are stored already.

        A guest that cannot snapshot (it raises, loops, or returns no JSON) is not
        asked again for this entity and module version; a store error is only
        logged (the next due snapshot tries again).
        """
        if (
            self.snapshot_every <= 0
            or entity.since_snapshot < self.snapshot_every
            or (entity.stream_name, entity.module.version) in self._no_snapshots
        ):
            return
        try:
            await self.write_snapshot(entity)
        except (GuestError, GuestAnswer) as exc:
            self._no_snapshots.add((entity.stream_name, entity.module.version))
            self.stats.snapshot_failures += 1
            log.warning(
                "%s: snapshot failed (%s); no more snapshots of it with %s %s",
                entity.stream_name,
                exc,
                entity.module.name,
                entity.module.version,
            )
            if not entity.wasm.alive:  # a trap or timeout took its instance: rebuild later
                self.cache.discard(entity.stream_name)
        except ThaloError as exc:
            self.stats.snapshot_failures += 1
            log.warning("%s: snapshot not written (%s)", entity.stream_name, exc)

    async def write_snapshot(self, entity: HydratedEntity) -> None:
        """Record the entity's state at its version in its snapshot stream."""
        state = _snapshot_json(await self._guest(entity.wasm.snapshot), entity)
        entity_id = entity.stream_name.partition("-")[2]
        message = NewMessage(
            type=SNAPSHOT_TYPE,
            data={
                "version": entity.version,
                "moduleVersion": entity.module.version,
                "state": state,
                "commands": {k: list(v) for k, v in entity.commands.items()},
            },
        )
        await self.store.write_message(snapshot_stream_name(entity.module.name, entity_id), message)
        entity.since_snapshot = 0
        self.stats.snapshots += 1

    # --- commands through the store ---------------------------------------------

    async def submit(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        reply: bool = True,
    ) -> Submitted:
        """Write the command to ``{category}:command-{id}`` for a ``thalo run`` to execute.

        The payload is validated first, so nothing invalid enters a command stream.
        With ``reply``, the runtime that executes it reports the outcome in a reply
        stream (``wait`` reads it). A ``command_id`` makes the submission
        idempotent: the message id and reply stream derive from it, so submitting
        it again writes nothing and returns the same reply stream (position -1).
        """
        body = dict(payload or {})
        module = await self.modules.current(aggregate)
        module.schema.validate_command(command, body)
        meta: dict[str, Any] = dict(metadata or {})
        stream = command_stream_name(module.name, entity_id)
        if command_id is None:
            message_id = new_message_id()
            reply_id = new_message_id()
        else:
            message_id = _keyed_uuid(f"{stream}\n{command_id}")
            reply_id = _keyed_uuid(f"reply\n{stream}\n{command_id}")
        meta[keys.COMMAND_ID] = command_id or message_id
        reply_stream = stream_name(REPLY_CATEGORY, reply_id) if reply else None
        if reply_stream is not None:
            meta[keys.REPLY_STREAM_NAME] = reply_stream
        message = NewMessage(type=command, data=body, metadata=meta, id=message_id)
        try:
            position = await self.store.write_message(stream, message)
        except DuplicateMessageId:
            if command_id is None:
                raise
            position = -1  # submitted before: its outcome is in the same reply stream
        return Submitted(
            module.name, entity_id, command, message_id, stream, position, reply_stream
        )

    async def wait(
        self, submitted: Submitted, *, timeout: float = 30.0, poll_interval: float = 0.05
    ) -> list[Message]:
        """The events a submitted command recorded, once a runtime has executed it.

        Raises ``CommandFailed`` (carrying the remote error and exit code) when it
        failed, and ``CommandTimeout`` when no runtime answered within ``timeout``.
        """
        if submitted.reply_stream_name is None:
            raise ValueError("the command was submitted without a reply stream")
        recorded = await self.outcome(
            submitted.reply_stream_name, timeout=timeout, poll_interval=poll_interval
        )
        if recorded is None:
            where = (
                f"at position {submitted.position}"
                if submitted.position >= 0
                else "(submitted before with this command id)"
            )
            raise CommandTimeout(
                f"no runtime executed {submitted.command} for {submitted.aggregate} "
                f"{submitted.entity_id!r} within {timeout:g} s. It is queued in "
                f"{submitted.stream_name} {where} and will run when a `thalo run` or "
                "`thalo serve` consumes that stream; nothing is lost by waiting"
            )
        return await self._read_range(recorded.stream_name, recorded.position, recorded.count)

    async def outcome(
        self, reply_stream_name: str, *, timeout: float = 0.0, poll_interval: float = 0.05
    ) -> Recorded | None:
        """Where a submitted command's events landed, read from its reply stream.

        None while no runtime has answered within ``timeout`` seconds; raises
        ``CommandFailed`` (carrying the remote error) when the command failed.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            answer = await self.store.get_last_stream_message(reply_stream_name)
            if answer is not None:
                break
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(poll_interval)
        data = answer.data
        if answer.type == REPLY_FAILED:
            fields = data.get("fields")
            raise CommandFailed(
                str(data.get("error")),
                str(data.get("message")),
                int(data.get("exitCode", 2)),
                int(data.get("httpStatus", 500)),
                fields if isinstance(fields, dict) else None,
            )
        position, count = int(data["position"]), int(data["count"])
        return Recorded(
            str(data["streamName"]),
            position,
            count,
            int(data.get("version", position + count - 1)),
            bool(data.get("duplicate", False)),
        )

    # --- time travel -----------------------------------------------------------

    async def state(
        self,
        aggregate: str,
        entity_id: str,
        *,
        at_position: int | None = None,
        at_time: datetime | None = None,
        progress: Progress | None = None,
    ) -> EntityState:
        """The entity's state now, after the event at ``at_position``, or as of ``at_time``.

        Rebuilt from events (and a snapshot at or before the target, when there is
        one), never from the cache, so it shows exactly what the stream says.
        """
        module = await self.modules.current(aggregate)
        stream = entity_stream_name(module.name, entity_id)
        until: Callable[[RawMessage], bool] | None = None
        if at_position is not None:
            until = lambda m: m.position <= at_position  # noqa: E731
        elif at_time is not None:
            moment = at_time if at_time.tzinfo else at_time.replace(tzinfo=UTC)
            until = lambda m: m.time <= moment  # noqa: E731
        entity = await self._hydrate(
            module,
            stream,
            entity_id,
            until=until,
            # A snapshot does not say when its last event happened: replay for --at-time.
            snapshot=at_time is None,
            snapshot_before=at_position,
            progress=progress,
        )
        try:
            if at_position is not None and entity.version < at_position:
                where = (
                    "has no events" if entity.version < 0 else f"ends at position {entity.version}"
                )
                raise UsageError(f"{stream} {where}: there is no position {at_position}")
            state = _snapshot_json(await self._guest(entity.wasm.snapshot), entity)
        finally:
            entity.wasm.close()
        return EntityState(module.name, entity_id, entity.version, module.version, state)

    # --- plumbing --------------------------------------------------------------

    def _count_fault(self, exc: GuestError) -> None:
        if isinstance(exc, GuestTimeout):
            self.stats.guest_timeouts += 1
        elif isinstance(exc, GuestOutOfMemory):
            self.stats.guest_out_of_memory += 1
        elif not isinstance(exc, EntityLost):
            self.stats.guest_traps += 1

    async def _call(self, module: LoadedModule, kind: str, fn: Callable[..., _T], *args: Any) -> _T:
        """A command's guest call: inline on the event loop when ``kind`` has been fast
        (a hot call costs less than two thread hand-offs), else on a worker thread, so
        that a slow call never holds up other entities (runtime/offload.py). An inline
        call never waits for its instance: if another thread holds it, it goes to a worker.
        """
        calls = module.calls
        if calls.inline(kind):
            started = perf_counter()
            try:
                result = fn(*args, wait=False)
            except InstanceBusy:
                pass
            else:
                calls.observe(kind, perf_counter() - started)
                return result

        def timed() -> _T:
            started = perf_counter()
            try:
                return fn(*args)
            finally:
                calls.observe(kind, perf_counter() - started)

        return await self._guest(timed)

    async def _guest(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a long guest call (replays, restores) on a worker thread, keeping the loop
        free: wasmtime releases the GIL while inside, so two guests run at once."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)


def _check_shapes(events: Sequence[tuple[Any, Any]]) -> None:
    """Each event a guest returned is a type name and a JSON object, or GuestOutputInvalid."""
    for index, (event_type, data) in enumerate(events):
        if type(event_type) is not str:
            raise GuestOutputInvalid(
                f"are misshapen: event {index}'s type is a {type(event_type).__name__}, "
                "not a string"
            )
        if type(data) is not dict:
            raise GuestOutputInvalid(
                f"are misshapen: event {index}'s data is a {type(data).__name__}, not an object"
            )


def _snapshot_json(text: str, entity: HydratedEntity) -> Any:
    """The guest's snapshot text as JSON, or GuestOutputInvalid."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise GuestOutputInvalid(
            f"{entity.module.name} {entity.module.version} returned a snapshot of "
            f"{entity.stream_name} that is not JSON: {exc}"
        ) from None


def _keyed_uuid(key: str) -> str:
    """A UUID determined by ``key`` (Message DB ids are UUIDs; command ids are any text)."""
    return str(uuid.uuid5(_SUBMIT_NAMESPACE, key))
