"""One component instance in its own Store: several entities, one thread at a time.

A trap kills the instance for good (wasmtime refuses to re-enter it), so the first
trap marks it dead, tells its module, and every entity living in it is lost.
"""

from __future__ import annotations

__all__ = ["AGGREGATE", "CONTRACT_VERSION", "Instance", "classify_trap"]

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from wasmtime import Store, WasmtimeError

from thalo.errors import GuestError, GuestOutOfMemory, GuestTimeout, GuestTrap, InvalidModule
from thalo.wasm._calls import CallOutcome, StringCall
from thalo.wasm._errors import EntityLost
from thalo.wasm.engine import TICK_SECONDS, track, wake

if TYPE_CHECKING:
    from wasmtime.component import Func, ResourceAny

    from thalo.wasm.entity import Entity
    from thalo.wasm.module import WasmModule

logger = logging.getLogger("thalo.guest")
_T = TypeVar("_T")

# The version of wit/aggregate.wit's package this host speaks; a component built
# against any other is refused (the loader says which is older).
CONTRACT_VERSION = "0.2.0"
AGGREGATE = f"thalo:aggregate/aggregate@{CONTRACT_VERSION}"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
_OOM_SIGNS = ("out of memory", "memory allocation of", "handle_alloc_error", "rust_oom")

# The instance and entity a guest call is running for, read by the log import.
_current = threading.local()


def guest_log(store: Any, level: str, message: str) -> None:
    """The ``host.log`` import: one guest line into the ``thalo.guest`` logger, tagged."""
    instance: Instance | None = getattr(_current, "instance", None)
    entity_id: str | None = getattr(_current, "entity", None)
    aggregate = instance.module.name if instance is not None else "?"
    if instance is not None and level == "error":
        instance.last_error = message
    with contextlib.suppress(Exception):  # a broken log handler must not trap the guest
        logger.log(
            _LEVELS.get(level, logging.ERROR),
            "[%s %s] %s",
            aggregate,
            entity_id or "-",
            message,
            extra={"aggregate": aggregate, "entity": entity_id},
        )


def classify_trap(exc: WasmtimeError, guest_said: str | None, budget: float) -> GuestError:
    """Maps a wasmtime trap to the precise error; the text includes what the guest logged."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else "trap"
    said = f"; the guest logged: {guest_said}" if guest_said else ""
    cause = text.rsplit("Caused by:", 1)[-1]
    if "interrupt" in cause:
        return GuestTimeout(f"guest exceeded its time budget of {budget:g} s")
    lowered = f"{text}\n{guest_said or ''}".lower()
    if any(sign in lowered for sign in _OOM_SIGNS):
        return GuestOutOfMemory(f"guest ran out of memory{said}")
    detail = cause.strip().splitlines()[-1] if cause.strip() else first
    return GuestTrap(f"guest trapped: {detail}{said}")


class Instance:
    """A Store plus an instantiated component; calls are serialized by a lock."""

    def __init__(self, module: WasmModule) -> None:
        self.module = module
        self.lock = threading.Lock()
        self.alive = True
        self.last_error: str | None = None
        self._entities: weakref.WeakSet[Entity] = weakref.WeakSet()
        self._entities_lock = threading.Lock()
        limits = module.limits
        store = Store(module.engine)
        store.set_limits(memory_size=limits.memory_bytes)
        store.set_epoch_deadline(limits.instantiate_ticks)
        self.store = store
        self.context = store._context()
        track(self)
        wake()
        try:
            with self.lock:  # held while guest code runs, so the ticker keeps ticking
                instance = module.linker.instantiate(store, module.component)
        except WasmtimeError as exc:
            self.alive = False
            if "wasm trap" not in str(exc):
                raise InvalidModule(f"cannot instantiate the component: {exc}") from exc
            raise classify_trap(exc, self.last_error, limits.instantiate_seconds) from exc
        self._call_ticks = limits.call_ticks
        # The first call touches much of the guest's memory image for the first time
        # (page faults from the compiled artifact): it gets the start-up budget. Seen
        # once: a schema call over 2 s on a VM right after a large pip install.
        self._first_ticks: int | None = limits.instantiate_ticks
        indexes = module.export_indexes

        def func(name: str) -> Func:
            found = instance.get_func(store, indexes[name])
            if found is None:  # the loader checked the exports already
                raise WasmtimeError(f"export {name} vanished")
            return found

        # wasmtime-py's generic functions, kept for the rare calls and for comparison.
        self.funcs = {name: func(name) for name in indexes}
        self.constructor = self.funcs["[constructor]entity"]
        self.restore_func = self.funcs["[static]entity.restore"]
        self.schema_func = self.funcs["schema"]
        funcs = self.funcs
        self.apply_call = StringCall(funcs["[method]entity.apply"], with_self=True, strings=1)
        self.handle_call = StringCall(funcs["[method]entity.handle"], with_self=True, strings=2)
        self.execute_call = StringCall(funcs["[method]entity.execute"], with_self=True, strings=2)
        self.snapshot_call = StringCall(funcs["[method]entity.snapshot"], with_self=True, strings=0)

    def call(
        self, fn: StringCall, entity: Entity, *args: str | bytes, ticks: int | None = None
    ) -> CallOutcome:
        """Runs one string call for ``entity`` under the time budget (``ticks`` overrides it).

        Raises ``EntityLost`` if the instance is already dead, a ``GuestError`` on a trap.
        """
        budget = ticks or self._budget()
        return self._run(
            entity.id,
            budget,
            lambda: fn(self.context, budget, entity.resource_ptr, *args),
        )

    def invoke(self, func: Func, entity_id: str | None, *args: Any) -> Any:
        """Runs a generic wasmtime-py call (constructor, restore, schema)."""

        budget = self._budget()

        def work() -> Any:
            self.store.set_epoch_deadline(budget)
            return func(self.store, *args)

        return self._run(entity_id, budget, work)

    def _budget(self) -> int:
        """Ticks for the next call: the call budget, or the start-up budget the first time."""
        first, self._first_ticks = self._first_ticks, None
        return self._call_ticks if first is None else max(first, self._call_ticks)

    def drop(self, entity: Entity, resource: ResourceAny) -> None:
        """Runs the guest destructor of ``entity`` (nothing to do if the instance died)."""
        self.forget(entity)
        if not self.alive:
            return

        def work() -> None:
            self.store.set_epoch_deadline(self._call_ticks)
            resource.drop(self.store)

        try:
            self._run(entity.id, self._call_ticks, work)
        except EntityLost:
            return  # died meanwhile: nothing left to drop

    def _run(self, entity_id: str | None, ticks: int, work: Callable[[], _T]) -> _T:
        with self.lock:
            if not self.alive:
                raise EntityLost(entity_id or "-", "its instance trapped and was discarded")
            _current.instance, _current.entity = self, entity_id
            self.last_error = None
            wake()
            try:
                return work()
            except WasmtimeError as exc:
                self.alive = False
                cause = exc
                error = classify_trap(exc, self.last_error, ticks * TICK_SECONDS)
            finally:
                _current.instance = _current.entity = None
        # Outside the lock: the module's callback may start rebuilding right away.
        self.module._instance_died(self, error)
        raise error from cause

    def register(self, entity: Entity) -> None:
        """Counts ``entity`` as living here (so a trap can name it)."""
        with self._entities_lock:
            self._entities.add(entity)

    def forget(self, entity: Entity) -> None:
        """``entity`` was dropped."""
        with self._entities_lock:
            self._entities.discard(entity)

    def entity_ids(self) -> list[str]:
        """Ids of the entities living here now."""
        with self._entities_lock:
            return [entity.id for entity in self._entities]

    @property
    def entity_count(self) -> int:
        """How many entities live here (placement uses it)."""
        return len(self._entities)

    def kill(self) -> None:
        """Marks the instance dead without a trap (module closed)."""
        with self.lock:
            self.alive = False
