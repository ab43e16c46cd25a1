"""One wasmtime Engine per process, with the component model and epoch interruption.

Time budgets are checked on epoch ticks: a daemon thread advances the engine's
epoch every ``TICK_SECONDS``; each call's deadline is the next tick, where a
callback charges the CPU time the guest's thread used and extends the deadline
or interrupts the call (``thalo.wasm.instance``). Epochs cost far less per call
than fuel metering, and CPU time, unlike the wall clock, does not grow with the
machine's load. The ticker parks
after a second with no new call and none running (an idle process would
otherwise wake 200 times a second) and resumes when the next call wakes it.
"""

from __future__ import annotations

__all__ = [
    "TICK_SECONDS",
    "Limits",
    "engine",
    "engine_fingerprint",
    "ticks",
    "track",
    "wake",
    "wasmtime_version",
]

import threading
import time
import weakref
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmtime import Engine

TICK_SECONDS = 0.005
_ENGINE_SETTINGS = "component-model;epoch-interruption;no-fuel"

_QUIET_TICKS = 200  # park after this many ticks without a new call (and none running)

_lock = threading.Lock()
_engine: Engine | None = None
_wake = threading.Event()
# Objects with a ``lock`` that is held while they run guest code (instances).
_tracked: weakref.WeakSet[Any] = weakref.WeakSet()
_ticks = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """What one guest call may use: CPU time per call and linear memory per instance.

    ``call_seconds`` is CPU time of the thread running the guest (a replay's
    ``apply`` gets it once per event it applies); ``instantiate_seconds`` bounds the
    start-up of a fresh instance (a Python guest initialises its interpreter then).
    The wall clock stops a call only past ``wall_factor`` times its budget: a
    loaded machine slows guests down, it must not fail them. An instance whose
    calls have touched more than ``recycle_bytes`` of memory (default: half of
    ``memory_bytes``) is recycled, so that one entity's memory cannot starve its
    neighbours (see ``Instance``).
    """

    call_seconds: float = 2.0
    memory_bytes: int = 64 << 20
    instantiate_seconds: float = 10.0
    wall_factor: float = 10.0
    recycle_bytes: int | None = None

    @property
    def recycle_at(self) -> int:
        """Memory an instance may touch before it is recycled (default: half the limit)."""
        return self.memory_bytes // 2 if self.recycle_bytes is None else self.recycle_bytes

    def __post_init__(self) -> None:
        if self.call_seconds <= 0 or self.instantiate_seconds <= 0:
            raise ValueError("time budgets must be positive")
        if self.wall_factor < 1:
            raise ValueError("wall_factor must be at least 1")
        if self.memory_bytes < 1 << 20:
            raise ValueError("memory_bytes must be at least 1 MiB")

    @property
    def call_ticks(self) -> int:
        """The call budget in epoch ticks (at least one)."""
        return max(1, round(self.call_seconds / TICK_SECONDS))

    @property
    def instantiate_ticks(self) -> int:
        """The instantiation budget in epoch ticks."""
        return max(1, round(self.instantiate_seconds / TICK_SECONDS))


@cache
def wasmtime_version() -> str:
    """The installed wasmtime-py version: compiled artifacts only load into the same one."""
    return version("wasmtime")


def engine_fingerprint() -> str:
    """Everything a serialized component depends on besides its bytes."""
    return f"wasmtime-{wasmtime_version()};{_ENGINE_SETTINGS}"


def engine() -> Engine:
    """The process-wide Engine; the first call also starts the epoch ticker."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                from wasmtime import Config, Engine

                config = Config()
                config.wasm_component_model = True
                config.epoch_interruption = True
                config.consume_fuel = False
                created = Engine(config)
                threading.Thread(
                    target=_tick, args=(created,), name="thalo-wasm-epoch", daemon=True
                ).start()
                _engine = created
    return _engine


def track(runner: Any) -> None:
    """Registers an object whose ``lock`` is held while it runs guest code."""
    _tracked.add(runner)


def wake() -> None:
    """Called before entering a guest: make sure the epoch is advancing."""
    if not _wake.is_set():
        _wake.set()


def ticks() -> int:
    """How many times the ticker advanced the epoch (for diagnostics and tests)."""
    return _ticks


def _busy() -> bool:
    try:
        return any(runner.lock.locked() for runner in list(_tracked))
    except RuntimeError:  # the set changed while copied: assume a call is running
        return True


def _tick(target: Engine) -> None:
    global _ticks
    while True:
        _wake.wait()
        _wake.clear()
        quiet = 0
        while quiet < _QUIET_TICKS or _busy():
            time.sleep(TICK_SECONDS)
            target.increment_epoch()
            _ticks += 1
            if _wake.is_set():
                _wake.clear()
                quiet = 0
            else:
                quiet += 1
