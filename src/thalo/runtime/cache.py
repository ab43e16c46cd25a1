"""Hydrated entities kept in memory (LRU), and the per-stream locks that serialize commands."""

from __future__ import annotations

__all__ = ["EntityCache", "HydratedEntity", "StreamLocks"]

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thalo.runtime.modules import LoadedModule
    from thalo.wasm import Entity


@dataclass(slots=True, eq=False)
class HydratedEntity:
    """An entity's state in the guest, and what the host knows about it.

    ``version`` is the position of the last event applied (-1: no events);
    ``commands`` maps recent command ids to the (first position, count) of the
    events they recorded, for idempotency without author code. ``contended``
    counts down the commands still to run in two calls (decide, then apply
    once stored) since the entity last lost a race for its stream.
    """

    stream_name: str
    module: LoadedModule
    wasm: Entity
    version: int = -1
    commands: OrderedDict[str, tuple[int, int]] = field(default_factory=OrderedDict)
    since_snapshot: int = 0
    contended: int = 0

    def remember(self, command_id: str, first: int, count: int, window: int) -> None:
        """Record that ``command_id`` wrote ``count`` events from ``first``; keep ``window``."""
        self.commands[command_id] = (first, count)
        self.commands.move_to_end(command_id)
        while len(self.commands) > window:
            self.commands.popitem(last=False)


class EntityCache:
    """At most ``capacity`` hydrated entities; the least recently used is dropped first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the entity cache needs a capacity of at least 1")
        self.capacity = capacity
        self._entries: OrderedDict[str, HydratedEntity] = OrderedDict()

    def get(self, stream_name: str) -> HydratedEntity | None:
        """The cached entity, if it is still alive (its instance did not trap)."""
        entry = self._entries.get(stream_name)
        if entry is None:
            return None
        if not entry.wasm.alive:
            del self._entries[stream_name]
            return None
        self._entries.move_to_end(stream_name)
        return entry

    def put(self, entry: HydratedEntity) -> None:
        self._entries[entry.stream_name] = entry
        self._entries.move_to_end(entry.stream_name)
        while len(self._entries) > self.capacity:
            _, old = self._entries.popitem(last=False)
            old.wasm.close()

    def discard(self, stream_name: str) -> None:
        entry = self._entries.pop(stream_name, None)
        if entry is not None:
            entry.wasm.close()

    def clear(self) -> None:
        for entry in self._entries.values():
            entry.wasm.close()
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class StreamLocks:
    """One lock per stream, held while a command for that stream runs; freed when unused."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, stream_name: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(stream_name) or (asyncio.Lock(), 0)
        self._locks[stream_name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[stream_name]
            if users == 1:
                del self._locks[stream_name]
            else:
                self._locks[stream_name] = (lock, users - 1)
