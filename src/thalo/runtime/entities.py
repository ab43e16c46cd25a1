"""Hydrated entities: from the cache, or rebuilt from a snapshot and the events after it;
and their snapshots.

Rebuilding reads the stream in batches while the guest applies the previous one
(on a worker thread, without the GIL), in calls of at most ~1 MiB of events with
a budget of one call per event, so a stream the module wrote can always be
rebuilt by it. A snapshot that cannot be restored falls back to replay and is
not tried again; a guest that cannot snapshot is not asked again (docs/runtime.md).
"""

from __future__ import annotations

__all__ = ["SNAPSHOT_TYPE", "Entities", "Progress", "snapshot_json"]

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from thalo.core import NewMessage, RawMessage, snapshot_stream_name
from thalo.core import metadata as keys
from thalo.errors import GuestError, GuestOutputInvalid, ThaloError
from thalo.runtime.cache import EntityCache, HydratedEntity
from thalo.runtime.modules import LoadedModule
from thalo.runtime.stats import RuntimeStats
from thalo.store import MessageStore
from thalo.wasm._errors import EntityLost, GuestAnswer

SNAPSHOT_TYPE = "Snapshot"
Progress = Callable[[int], None]
log = logging.getLogger("thalo.runtime")
_T = TypeVar("_T")


class Entities:
    """The runtime's entities: cached, hydrated, caught up, rebuilt and snapshotted.

    ``run`` runs a long guest call (replays, restores, snapshots) off the event
    loop; a snapshot is written every ``snapshot_every`` events (0: never).
    """

    def __init__(
        self,
        store: MessageStore,
        cache: EntityCache,
        stats: RuntimeStats,
        run: Callable[..., Awaitable[Any]],
        *,
        snapshot_every: int,
        idempotency_window: int,
        replay_batch: int,
    ) -> None:
        self.store = store
        self.cache = cache
        self.stats = stats
        self._run = run
        self.snapshot_every = snapshot_every
        self.idempotency_window = idempotency_window
        self.replay_batch = replay_batch
        self._bad_snapshots: set[str] = set()  # ids of snapshots that failed to restore
        # (stream, module version) whose guest failed to snapshot: not asked again
        self._no_snapshots: set[tuple[str, str]] = set()

    async def get(self, module: LoadedModule, stream: str, entity_id: str) -> HydratedEntity:
        cached = self.cache.get(stream)
        if cached is not None and cached.module is module:
            self.stats.cache_hits += 1
            return cached
        self.stats.cache_misses += 1
        if cached is not None:  # an older module version: rebuild with the new one
            self.cache.discard(stream)
        entity = await self.hydrate(module, stream, entity_id)
        self.cache.put(entity)
        return entity

    async def rebuild(self, entity: HydratedEntity, entity_id: str) -> HydratedEntity:
        """Drop ``entity``'s guest state and rebuild it from the store (snapshot + events)."""
        self.cache.discard(entity.stream_name)
        entity.wasm.close()  # idempotent; the cache may have dropped it already
        self.stats.rebuilds += 1
        rebuilt = await self.hydrate(entity.module, entity.stream_name, entity_id)
        self.cache.put(rebuilt)
        return rebuilt

    async def catch_up(self, entity: HydratedEntity, entity_id: str) -> HydratedEntity:
        """Apply what other writers appended since ``entity.version``."""
        try:
            await self._replay(entity, entity.version + 1)
        except GuestError:
            entity = await self.rebuild(entity, entity_id)
        return entity

    async def hydrate(
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
            wasm = await self._run(module.wasm.entity, entity_id)
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
                wasm = await self._run(
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
        upcaster = entity.module.upcaster
        versioned = upcaster.current  # types past version 1 (usually none: no cost)
        type_texts: dict[str, str] = {}  # event type -> its JSON string
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
                    # Built as text from the stored JSON (never decoded) and encoded once
                    # per call; ``taken`` counts characters, near enough to bytes here.
                    parts: list[str] = []
                    taken = 0
                    end = start
                    while end < len(batch) and (end == start or taken < max_bytes):
                        m = batch[end]
                        data, tail = m.data, "}"
                        if versioned and m.type in versioned:
                            upcast = upcaster.upcast(m.type, m.data, m.metadata)
                            if upcast is not None:  # stored by an older schema of its type
                                data = upcast[0].decode()
                                tail = f',"schemaVersion":{upcast[1]}}}'
                        type_json = type_texts.get(m.type)
                        if type_json is None:
                            type_json = type_texts[m.type] = orjson.dumps(m.type).decode()
                        part = f'{{"type":{type_json},"position":{m.position},"data":{data}{tail}'
                        taken += len(part)
                        if end > start and taken > max_bytes:
                            break
                        parts.append(part)
                        end += 1
                    chunk = batch[start:end]
                    body = ("[" + ",".join(parts) + "]").encode()
                    count = len(chunk)
                    await self._run(lambda: wasm.apply(body, count=count))  # noqa: B023
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

    async def maybe_snapshot(self, entity: HydratedEntity) -> None:
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
        except EntityLost:  # its instance was recycled or trapped: not the guest's fault
            self.cache.discard(entity.stream_name)
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
        state = snapshot_json(await self._run(entity.wasm.snapshot), entity)
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


def snapshot_json(text: str, entity: HydratedEntity) -> Any:
    """The guest's snapshot text as JSON, or GuestOutputInvalid."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise GuestOutputInvalid(
            f"{entity.module.name} {entity.module.version} returned a snapshot of "
            f"{entity.stream_name} that is not JSON: {exc}"
        ) from None
