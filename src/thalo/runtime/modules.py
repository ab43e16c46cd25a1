"""Loaded aggregate modules: the newest published version of each aggregate, hot-swapped.

Each runtime process asks the registry for the newest publish or retirement at
most once per ``check_interval`` seconds, so a new (or retired) version serves
(or stops serving) new commands within about that time without a restart;
``recheck`` makes the next use ask at once (the server calls it after a publish or a
retirement through it).
Compiled components are reused by content hash.
"""

from __future__ import annotations

__all__ = ["LoadedModule", "ModuleSet"]

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from thalo.errors import ModuleRetired
from thalo.esdl import Schema
from thalo.registry import ModuleRecord, Registry
from thalo.runtime.offload import CallTimes
from thalo.runtime.upcasting import Upcaster

if TYPE_CHECKING:
    from thalo.wasm import Limits, WasmModule


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModule:
    """A published module version, compiled and instantiated, and how long its calls take."""

    record: ModuleRecord
    wasm: WasmModule
    calls: CallTimes = field(default_factory=CallTimes)
    upcaster: Upcaster = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "upcaster", Upcaster(self.record.schema))

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> str:
        return self.record.version

    @property
    def schema(self) -> Schema:
        return self.record.schema


class ModuleSet:
    """Resolves aggregate names to loaded modules, following new publishes."""

    def __init__(
        self,
        registry: Registry,
        *,
        limits: Limits | None = None,
        max_instances: int = 2,
        check_interval: float = 1.0,
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._max_instances = max_instances
        self._check_interval = check_interval
        self._by_sha: dict[str, LoadedModule] = {}
        self._current: dict[str, LoadedModule] = {}
        self._revision = (-1, -1)
        self._checked_at = float("-inf")
        self._locks: dict[str, asyncio.Lock] = {}

    async def current(self, aggregate: str) -> LoadedModule:
        """The newest published version of ``aggregate`` that is not retired, loaded.

        Raises ``UnknownAggregate`` when nothing of that name is published and
        ``ModuleRetired`` when every version is retired.
        """
        await self._refresh()
        found = self._current.get(aggregate)
        if found is not None:
            return found
        lock = self._locks.setdefault(aggregate, asyncio.Lock())
        async with lock:
            found = self._current.get(aggregate)
            if found is None:
                record = await self._registry.resolve(aggregate)
                found = await self.load(record)
                self._current[aggregate] = found
            return found

    async def for_history(self, aggregate: str) -> LoadedModule:
        """The module that reads ``aggregate``'s history: ``current``, or if every
        version is retired, the newest retired one (retiring stops commands, not reads)."""
        try:
            return await self.current(aggregate)
        except ModuleRetired:
            return await self.load(await self._registry.resolve(aggregate, retired=True))

    async def load(self, record: ModuleRecord) -> LoadedModule:
        """Compile (or fetch from the compile cache) and instantiate one module version.

        The same bytes give the same ``LoadedModule`` for the life of the set, so
        entities cached under it stay valid across publishes of other versions.
        """
        loaded = self._by_sha.get(record.sha256)
        if loaded is None:
            data = await self._registry.module_bytes(record.name, record.version)
            wasm = await asyncio.to_thread(self._load_bytes, data, record.sha256)
            loaded = self._by_sha[record.sha256] = LoadedModule(record, wasm)
        return loaded

    def _load_bytes(self, data: bytes, sha256: str) -> WasmModule:
        from thalo.wasm import load_module

        return load_module(
            data, sha256=sha256, limits=self._limits, max_instances=self._max_instances
        )

    def recheck(self) -> None:
        """Ask the registry again at the next use, whatever ``check_interval`` says: for a
        publish or retirement made through this process, which its next command must see."""
        self._checked_at = float("-inf")

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._check_interval:
            return
        self._checked_at = now
        revision = await self._registry.revision()
        if revision != self._revision:
            # Something was published or retired: resolve names again on next use.
            # Loaded components stay cached by content hash.
            self._revision = revision
            self._current.clear()

    def loaded(self) -> list[LoadedModule]:
        """Every module version loaded so far (for metrics)."""
        return list(self._by_sha.values())

    def close(self) -> None:
        """Discard every loaded module's instances; idempotent."""
        for loaded in self._by_sha.values():
            loaded.wasm.close()
        self._by_sha.clear()
        self._current.clear()
