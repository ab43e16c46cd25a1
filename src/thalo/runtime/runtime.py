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

__all__ = ["Runtime"]

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

from thalo.core import (
    EntityState,
    Message,
    NewMessage,
    RawMessage,
    entity_stream_name,
)
from thalo.core import metadata as keys
from thalo.errors import (
    CommandRejected,
    ConcurrencyExhausted,
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
from thalo.runtime.command_streams import (
    CommandStreams,
    Submitted,
)
from thalo.runtime.entities import Entities, Progress, snapshot_json
from thalo.runtime.modules import LoadedModule, ModuleSet
from thalo.runtime.recorded import Recorded
from thalo.runtime.stats import RuntimeStats
from thalo.store import MessageStore
from thalo.wasm._errors import (
    EntityLost,
    GuestDecodeFailed,
    GuestIgnored,
    GuestRejected,
    GuestUnknownCommand,
    InstanceBusy,
)
from thalo.wasm._usage import guest_cpu_seconds

if TYPE_CHECKING:
    from thalo.wasm import Limits

# After losing a race for its stream, an entity decides and applies in two guest
# calls for this many commands: a lost race then costs a catch-up, not a rebuild.
CONTENDED_COMMANDS = 100
log = logging.getLogger("thalo.runtime")
_T = TypeVar("_T")


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
        self.max_retries = max_retries
        self._locks = StreamLocks()
        self._executor = ThreadPoolExecutor(guest_threads, thread_name_prefix="thalo-guest")
        self._closed = False
        self.stats = RuntimeStats()
        self.entities = Entities(
            store,
            self.cache,
            self.stats,
            self._guest,
            snapshot_every=snapshot_every,
            idempotency_window=idempotency_window,
            replay_batch=replay_batch,
        )
        self.command_streams = CommandStreams(store, self.modules, self._read_range)

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
            entity = await self.entities.get(module, stream, entity_id)
            stats = self.stats
            caught_up = False
            for _attempt in range(self.max_retries + 1):
                if command_id is not None and command_id in entity.commands:
                    first, count = entity.commands[command_id]
                    return Recorded(stream, first, count, entity.version, duplicate=True)
                if expected_version is not None and entity.version != expected_version:
                    if entity.version < expected_version and not caught_up:
                        # The cache may be behind writes made elsewhere: look once.
                        entity = await self.entities.catch_up(entity, entity_id)
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
                    entity = await self.entities.get(module, stream, entity_id)
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
                        entity = await self.entities.rebuild(entity, entity_id)
                    else:
                        entity = await self.entities.catch_up(entity, entity_id)
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
                await self.entities.maybe_snapshot(entity)
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
            entity.remember(command_id, first, count, self.entities.idempotency_window)

    async def _read_range(self, stream: str, first: int, count: int) -> list[Message]:
        if count == 0:
            return []
        return await self.store.get_stream_messages(stream, first, count)

    # --- commands through the store (runtime/command_streams.py) ------------------

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
        """Write the command to its command stream for a runner; see ``CommandStreams.submit``."""
        return await self.command_streams.submit(
            aggregate,
            entity_id,
            command,
            payload,
            command_id=command_id,
            metadata=metadata,
            reply=reply,
        )

    async def wait(
        self, submitted: Submitted, *, timeout: float = 30.0, poll_interval: float = 0.05
    ) -> list[Message]:
        """The events a submitted command recorded; see ``CommandStreams.wait``."""
        return await self.command_streams.wait(
            submitted, timeout=timeout, poll_interval=poll_interval
        )

    async def outcome(
        self, reply_stream_name: str, *, timeout: float = 0.0, poll_interval: float = 0.05
    ) -> Recorded | None:
        """Where a submitted command's events landed; see ``CommandStreams.outcome``."""
        return await self.command_streams.outcome(
            reply_stream_name, timeout=timeout, poll_interval=poll_interval
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
        module = await self.modules.for_history(aggregate)
        stream = entity_stream_name(module.name, entity_id)
        until: Callable[[RawMessage], bool] | None = None
        if at_position is not None:
            until = lambda m: m.position <= at_position  # noqa: E731
        elif at_time is not None:
            moment = at_time if at_time.tzinfo else at_time.replace(tzinfo=UTC)
            until = lambda m: m.time <= moment  # noqa: E731
        entity = await self.entities.hydrate(
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
            state = snapshot_json(await self._guest(entity.wasm.snapshot), entity)
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
        A call is timed in CPU time of its thread inside the guest (wasm/_usage.py): on
        a loaded machine, waiting for the GIL or a core must not make a fast command
        look slow.
        """
        calls = module.calls
        if calls.inline(kind):
            started = guest_cpu_seconds()
            try:
                result = fn(*args, wait=False)
            except InstanceBusy:
                pass
            else:
                calls.observe(kind, guest_cpu_seconds() - started)
                return result

        def timed() -> _T:
            started = guest_cpu_seconds()
            try:
                return fn(*args)
            finally:
                calls.observe(kind, guest_cpu_seconds() - started)

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
