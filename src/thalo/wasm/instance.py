"""One component instance in its own Store: several entities, one thread at a time.

A trap kills the instance for good (wasmtime refuses to re-enter it), so the first
trap marks it dead, tells its module, and every entity living in it is lost.

Time budgets count the guest's work, not the wall clock: a call's deadline is one
epoch tick away, and when it passes wasmtime calls back (on the thread running the
guest), which charges the CPU time that thread used (``time.thread_time``) and
either extends the deadline or interrupts the call. The wall clock is only a
generous outer cap (``Limits.wall_factor`` times the budget), so a loaded machine
does not time out guests that did their work within budget.

Memory is watched the same way, by what the guest does rather than what wasmtime
reports (wasmtime-py cannot read a component's memory size): the minor page faults
of the thread during a call are pages the guest touched for the first time, so
their sum is the instance's resident memory, near enough. Past
``Limits.recycle_at`` the instance is retired: it takes no new entities and closes
(freeing its memory) when its last entity is dropped. If the call that crossed the
line grew it by a large share itself (a memory hog, not many small entities), the
instance keeps only that entity: the others are lost from their next call on and
rebuilt on fresh instances, where the hog's memory cannot fail them.
"""

from __future__ import annotations

__all__ = ["AGGREGATE", "CONTRACT_VERSION", "Instance", "classify_trap"]

import contextlib
import ctypes
import logging
import resource
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from wasmtime import Store, WasmtimeError
from wasmtime import _bindings as bindings

from thalo.errors import GuestError, GuestOutOfMemory, GuestTimeout, GuestTrap, InvalidModule
from thalo.wasm._calls import CallOutcome, StringCall
from thalo.wasm._errors import EntityLost, InstanceBusy
from thalo.wasm._usage import current
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
# What a guest's interpreter prints when an allocation fails outside thalo's glue
# (componentize-py writes "MemoryError: " to stderr, which reaches the log as a warning).
_OOM_LINE_STARTS = ("MemoryError", "out of memory")

# Guest log lines: longer ones are cut, and past this many lines per second an
# instance's further lines are dropped (counted, and the count logged per call).
LOG_LINE_CHARS = 16_384
LOG_LINES_PER_SECOND = 100

# Ticks between two checks of a running call's CPU time (the first check comes
# after one tick, so a short call never pays one).
_CHECK_TICKS = 4
_INTERRUPTED = b"thalo: the guest call exceeded its time budget (interrupt)"
_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(bindings.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(bindings.wasmtime_update_deadline_kind_t),
)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()

_PAGE = resource.getpagesize()
_RUSAGE_THREAD = resource.RUSAGE_THREAD
_getrusage = resource.getrusage


def _faults() -> int:
    """Minor page faults of this thread so far: pages touched for the first time."""
    return _getrusage(_RUSAGE_THREAD).ru_minflt


def guest_log(store: Any, level: str, message: str) -> None:
    """The ``host.log`` import: one guest line into the ``thalo.guest`` logger, tagged.

    Lines are cut to ``LOG_LINE_CHARS`` and limited to ``LOG_LINES_PER_SECOND`` per
    instance: a guest logging megabytes in a loop must not flood the host's log
    (its call budget bounds the work, not the output). Dropped lines are counted
    and reported once per call. Error lines and allocation failures are always
    noted for the trap message, dropped or not.
    """
    instance = current.instance
    entity_id = current.entity
    aggregate = instance.module.name if instance is not None else "?"
    if len(message) > LOG_LINE_CHARS:
        cut = len(message) - LOG_LINE_CHARS
        message = f"{message[:LOG_LINE_CHARS]}… [{cut} more characters cut]"
    if instance is not None:
        if level == "error":
            instance.last_error = message
        if message.startswith(_OOM_LINE_STARTS):
            instance.out_of_memory = True
        if not instance.log_allowed():
            return
    with contextlib.suppress(Exception):  # a broken log handler must not trap the guest
        logger.log(
            _LEVELS.get(level, logging.ERROR),
            "[%s %s] %s",
            aggregate,
            entity_id or "-",
            message,
            extra={"aggregate": aggregate, "entity": entity_id},
        )


def classify_trap(
    exc: WasmtimeError, guest_said: str | None, budget: float, *, out_of_memory: bool = False
) -> GuestError:
    """Maps a wasmtime trap to the precise error; the text includes what the guest logged.

    ``out_of_memory``: the guest reported a failed allocation (a ``MemoryError``) before
    trapping, whatever else it logged.
    """
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else "trap"
    said = f"; the guest logged: {guest_said}" if guest_said else ""
    cause = text.rsplit("Caused by:", 1)[-1]
    if "interrupt" in cause:
        return GuestTimeout(f"guest exceeded its time budget of {budget:g} s")
    lowered = f"{text}\n{guest_said or ''}".lower()
    if out_of_memory or any(sign in lowered for sign in _OOM_SIGNS):
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
        self.out_of_memory = False
        # Memory the guest touched (bytes, from page faults during its calls); once
        # retired for it, no new entities, and with ``owner`` set only that one.
        self.touched = 0
        self.retired = False
        self.owner: str | None = None
        self._recycle_at = module.limits.recycle_at
        self._entities: weakref.WeakSet[Entity] = weakref.WeakSet()
        self._entities_lock = threading.Lock()
        limits = module.limits
        self._wall_factor = limits.wall_factor
        # The running call's budget: CPU seconds, CPU used so far, the thread CPU
        # clock at the last check (None before the first), wall start.
        self._budget_seconds = limits.instantiate_seconds
        self._used = 0.0
        self._cpu_mark: float | None = None
        self._started = time.monotonic()
        # Guest log rate: the current one-second window, lines in it, lines dropped.
        self._log_window = 0.0
        self._log_lines = 0
        self.log_dropped = 0
        store = Store(module.engine)
        store.set_limits(memory_size=limits.memory_bytes)
        self._on_deadline = _DeadlineCallback(self._deadline)  # kept alive with the store
        bindings.wasmtime_store_epoch_deadline_callback(
            store.ptr(), self._on_deadline, None, _NO_FINALIZER
        )
        self.store = store
        self.context = store._context()
        track(self)
        wake()
        try:
            with self.lock:  # held while guest code runs, so the ticker keeps ticking
                self._start_budget(limits.instantiate_ticks)
                store.set_epoch_deadline(1)
                faults = _faults()
                instance = module.linker.instantiate(store, module.component)
                self.touched = (_faults() - faults) * _PAGE
        except WasmtimeError as exc:
            self.alive = False
            if "wasm trap" not in str(exc):
                raise InvalidModule(f"cannot instantiate the component: {exc}") from exc
            raise classify_trap(
                exc, self.last_error, limits.instantiate_seconds, out_of_memory=self.out_of_memory
            ) from exc
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
        self,
        fn: StringCall,
        entity: Entity,
        *args: str | bytes,
        ticks: int | None = None,
        wait: bool = True,
    ) -> CallOutcome:
        """Runs one string call for ``entity`` under the time budget (``ticks`` overrides it).

        Raises ``EntityLost`` if the instance is already dead, a ``GuestError`` on a trap,
        ``InstanceBusy`` without ``wait`` when another call holds the instance.
        """
        budget = ticks or self._budget()
        return self._run(
            entity.id,
            budget,
            lambda: fn(self.context, 1, entity.resource_ptr, *args),
            wait=wait,
        )

    def hosts(self, entity_id: str) -> bool:
        """Whether ``entity_id`` may still call into this instance (alive, and not
        retired for another entity's memory)."""
        return self.alive and (self.owner is None or entity_id == self.owner)

    def retire(self, owner: str | None) -> int:
        """Take no new entities; with ``owner``, serve only that one from now on.
        Returns how many entities lost their place here."""
        with self._entities_lock:
            self.retired, self.owner = True, owner
            if owner is None:
                return 0
            return sum(1 for entity in self._entities if entity.id != owner)

    def invoke(self, func: Func, entity_id: str | None, *args: Any) -> Any:
        """Runs a generic wasmtime-py call (constructor, restore, schema)."""

        budget = self._budget()

        def work() -> Any:
            self.store.set_epoch_deadline(1)
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
            self.store.set_epoch_deadline(1)
            resource.drop(self.store)

        try:
            self._run(entity.id, self._call_ticks, work, dropping=True)
        except EntityLost:
            return  # died meanwhile: nothing left to drop

    def _start_budget(self, ticks: int) -> None:
        """Arms the budget of the call about to run (the lock is held)."""
        self._budget_seconds = ticks * TICK_SECONDS
        self._used = 0.0
        self._cpu_mark = None
        self._started = time.monotonic()

    def _deadline(self, context: Any, env: Any, delta: Any, kind: Any) -> int:
        """The epoch-deadline callback, on the guest's thread: continue, or interrupt.

        Until the first check the call is charged wall time (at most a tick or so);
        from then on the CPU time of this thread. The wall clock interrupts only past
        ``wall_factor`` times the budget.
        """
        try:
            now = time.monotonic()
            cpu = time.thread_time()
            if self._cpu_mark is None:
                self._used = now - self._started
            else:
                self._used += cpu - self._cpu_mark
            self._cpu_mark = cpu
            left = self._budget_seconds - self._used
            if left <= 0 or now - self._started > self._budget_seconds * self._wall_factor:
                error = bindings.wasmtime_error_new(ctypes.create_string_buffer(_INTERRUPTED))
                return ctypes.cast(error, ctypes.c_void_p).value or 0
            delta[0] = max(1, min(_CHECK_TICKS, int(left / TICK_SECONDS)))
            kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
        except Exception:  # never let an exception escape into wasmtime: check again soon
            delta[0] = 1
            kind[0] = 0
        return 0

    def log_allowed(self) -> bool:
        """Whether the guest may log one more line now (``LOG_LINES_PER_SECOND``)."""
        now = time.monotonic()
        if now - self._log_window >= 1.0:
            self._log_window = now
            self._log_lines = 0
        self._log_lines += 1
        if self._log_lines <= LOG_LINES_PER_SECOND:
            return True
        self.log_dropped += 1
        return False

    def _report_dropped(self, entity_id: str | None) -> None:
        dropped, self.log_dropped = self.log_dropped, 0
        aggregate = self.module.name
        with contextlib.suppress(Exception):
            logger.warning(
                "[%s %s] %d guest log lines dropped (over %d lines/s)",
                aggregate,
                entity_id or "-",
                dropped,
                LOG_LINES_PER_SECOND,
                extra={"aggregate": aggregate, "entity": entity_id, "dropped": dropped},
            )

    def _run(
        self,
        entity_id: str | None,
        ticks: int,
        work: Callable[[], _T],
        *,
        wait: bool = True,
        dropping: bool = False,
    ) -> _T:
        if not self.lock.acquire(blocking=wait):
            raise InstanceBusy(entity_id or "-")
        outgrown, grown = False, 0
        try:
            if not self.alive:
                raise EntityLost(entity_id or "-", "its instance was discarded")
            if self.owner is not None and entity_id != self.owner and not dropping:
                raise EntityLost(
                    entity_id or "-",
                    "its instance was retired for another entity's memory",
                )
            running = current
            running.instance, running.entity = self, entity_id
            self.last_error = None
            self.out_of_memory = False
            self._start_budget(ticks)
            wake()
            # One getrusage before and after: the CPU time the call used (the runtime
            # reads it to keep slow commands off the event loop) and the pages it
            # touched for the first time (page faults: how the instance's memory grew).
            usage = _getrusage(_RUSAGE_THREAD)
            try:
                return work()
            except WasmtimeError as exc:
                self.alive = False
                self._close_store()
                cause = exc
                error = classify_trap(
                    exc,
                    self.last_error,
                    ticks * TICK_SECONDS,
                    out_of_memory=self.out_of_memory,
                )
            finally:
                after = _getrusage(_RUSAGE_THREAD)
                running.cpu += (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
                running.instance = running.entity = None
                if self.alive:
                    grown = (after.ru_minflt - usage.ru_minflt) * _PAGE
                    self.touched += grown
                    outgrown = self.touched > self._recycle_at and not self.retired
                if self.log_dropped:
                    self._report_dropped(entity_id)
        finally:
            self.lock.release()
            if outgrown:
                self.module._outgrown(self, entity_id, grown)

        lost: GuestError = error
        if isinstance(error, GuestOutOfMemory):
            others = [i for i in self.entity_ids() if i != entity_id]
            if others and entity_id is not None:
                # Another entity's memory may be what ran out: the caller gets one try
                # on an instance of its own (the module places it there), and only an
                # out-of-memory there is its own fault.
                self.module._give_own_instance(entity_id)
                lost = EntityLost(
                    entity_id,
                    f"its instance ran out of memory while holding {len(others)} other "
                    "entities; it gets an instance of its own",
                )
        # Outside the lock: the module's callback may start rebuilding right away.
        self.module._instance_died(self, error)
        raise lost from cause

    def register(self, entity: Entity) -> None:
        """Counts ``entity`` as living here (so a trap can name it)."""
        with self._entities_lock:
            self._entities.add(entity)

    def forget(self, entity: Entity) -> None:
        """``entity`` was dropped; a retired instance closes when its last one is."""
        with self._entities_lock:
            self._entities.discard(entity)
            empty = not self._entities
        if empty and self.retired:
            self.kill(wait=False)

    def entity_ids(self) -> list[str]:
        """Ids of the entities living here now."""
        with self._entities_lock:
            return [entity.id for entity in self._entities]

    @property
    def entity_count(self) -> int:
        """How many entities live here (placement uses it)."""
        return len(self._entities)

    def kill(self, *, wait: bool = True) -> None:
        """Marks the instance dead without a trap and frees its memory (module closed,
        instance recycled). Without ``wait``, a running call is left to finish: the
        instance is dead for every later call, and its memory goes with the object."""
        if not self.lock.acquire(blocking=wait):
            self.alive = False
            return
        try:
            self.alive = False
            self._close_store()
        finally:
            self.lock.release()

    def _close_store(self) -> None:
        """Frees the Store (the guest's memory) of a dead instance; the lock is held."""
        with contextlib.suppress(Exception):
            self.store.close()
