"""The component side of the glue: binds the WIT ``aggregate`` export to :class:`EntityCore`.

Importable only inside a componentize-py build (it imports the generated ``wit_world``
bindings). ``thalo build`` writes two tiny modules next to it: ``aggregate.py``
(re-exporting :class:`Entity`, where componentize-py looks for the resource class)
and the app module, which calls :func:`install` with the author's class.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    Error_Decode,
    Error_Ignored,
    Error_Rejected,
    Error_UnknownCommand,
    Error_UnknownEvent,
)

from thalo.sdk import _dispatch, _log
from thalo.sdk._aggregate import Aggregate
from thalo.sdk._dispatch import EntityCore
from thalo.sdk._errors import DispatchError, Ignore, Rejected

_LEVELS = {
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}
# Built before memory runs out: reporting an OOM must not need to allocate.
_OOM_LINE = "out of memory: MemoryError raised inside the guest"
_ERROR = host.Level.ERROR

_aggregate_cls: type[Aggregate] | None = None
# The seed ``random`` takes before its next draw (set per command and per event).
_pending_seed: str | None = None


def _host_sink(level: str, message: str) -> None:
    host.log(_LEVELS[level], message)


class _LogWriter:
    """``sys.stdout``/``sys.stderr`` replacement: whole lines go to the host log.

    WASI is stubbed out, so a plain ``print()`` would trap the instance.
    """

    def __init__(self, level: str) -> None:
        self.level = level
        self.pending = ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            host.log(_LEVELS[self.level], line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            host.log(_LEVELS[self.level], line)

    def isatty(self) -> bool:
        return False


def _set_seed(text: str) -> None:
    global _pending_seed
    _pending_seed = text


def _seeded(draw: Callable[..., Any]) -> Callable[..., Any]:
    """``random.<draw>`` that first seeds the shared generator if a seed is pending.

    Seeding lazily keeps replays of aggregates that never draw as fast as before
    (``random.seed`` costs more than applying a small event).
    """
    generator: Any = draw.__self__  # type: ignore[attr-defined]

    def call(*args: Any, **kwargs: Any) -> Any:
        global _pending_seed
        core = _dispatch.applying
        if core is not None:  # applying an event: seed once per event, from its position
            if core.unseeded:
                core.unseeded = False
                generator.seed(f"apply\0{core.aggregate.id}\0{core.position}")
        elif _pending_seed is not None:  # deciding a command
            seed, _pending_seed = _pending_seed, None
            generator.seed(seed)
        return draw(*args, **kwargs)

    call.__name__ = call.__qualname__ = draw.__name__
    call.__doc__ = draw.__doc__
    return call


def _deterministic_random() -> None:
    """Makes the ``random`` module's functions replay: seeded per command (entity and
    ctx) and per event (entity and stream position), see :data:`_dispatch.seed_hook`.

    Only calls through the module (``random.random()``) are covered; a function bound
    with ``from random import ...`` before :func:`install` ran keeps the build-time seed.
    """
    shared = getattr(random, "_inst", None)
    for name in random.__all__:
        draw = getattr(random, name)
        if shared is not None and getattr(draw, "__self__", None) is shared:
            setattr(random, name, _seeded(draw))
    _dispatch.seed_hook = _set_seed


def install(aggregate_cls: type[Aggregate]) -> None:
    """Makes ``aggregate_cls`` the class behind every exported entity.

    Runs while the component is being built, so a class that cannot work fails
    the build instead of every call.
    """
    global _aggregate_cls
    if not (isinstance(aggregate_cls, type) and issubclass(aggregate_cls, Aggregate)):
        raise TypeError(f"{aggregate_cls!r} is not a subclass of thalo.sdk.Aggregate")
    missing = sorted(getattr(aggregate_cls, "__abstractmethods__", ()))
    if missing:
        raise TypeError(f"{aggregate_cls.__name__} does not implement {', '.join(missing)}")
    _aggregate_cls = aggregate_cls
    _log.set_sink(_host_sink)
    _deterministic_random()
    sys.stdout = _LogWriter("info")
    sys.stderr = _LogWriter("warn")


def _cls() -> type[Aggregate]:
    if _aggregate_cls is None:
        raise RuntimeError("thalo guest glue: install() was never called")
    return _aggregate_cls


def _report(exc: BaseException) -> None:
    """Logs an unexpected exception with its frames; source lines are not read (no files)."""
    if isinstance(exc, MemoryError):
        host.log(_ERROR, _OOM_LINE)
        return
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(f"  {code.co_filename}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    host.log(_ERROR, f"{type(exc).__name__}: {exc}\n" + "\n".join(frames))


def _translate(exc: Exception) -> Err:
    if isinstance(exc, Rejected):
        return Err(Error_Rejected(exc.reason))
    if isinstance(exc, Ignore):
        return Err(Error_Ignored(exc.reason))
    assert isinstance(exc, DispatchError)
    if exc.kind == "unknown-command":
        return Err(Error_UnknownCommand(exc.detail))
    if exc.kind == "unknown-event":
        return Err(Error_UnknownEvent(exc.detail))
    return Err(Error_Decode(exc.detail))


_EXPECTED = (Rejected, Ignore, DispatchError)
_T = TypeVar("_T")


def _guarded(method: Callable[..., _T], *args: Any) -> _T:
    """Runs an :class:`EntityCore` method: answers become WIT errors, bugs are logged and trap."""
    try:
        return method(*args)
    except _EXPECTED as exc:
        raise _translate(exc) from None
    except BaseException as exc:
        _report(exc)
        raise


class Entity:
    """The exported ``entity`` resource: one aggregate instance living in the guest."""

    def __init__(self, id: str) -> None:
        try:
            self._core = EntityCore.create(_cls(), id)
        except BaseException as exc:
            _report(exc)
            raise

    def apply(self, events: str) -> None:
        _guarded(self._core.apply, events)

    def handle(self, ctx: str, command: str) -> str:
        return _guarded(self._core.handle, ctx, command)

    def execute(self, ctx: str, command: str) -> str:
        return _guarded(self._core.execute, ctx, command)

    def snapshot(self) -> str:
        return _guarded(self._core.snapshot)

    @classmethod
    def restore(cls, id: str, snapshot: str) -> Entity:
        core = _guarded(lambda: EntityCore.restore(_cls(), id, snapshot))
        entity = cls.__new__(cls)
        entity._core = core
        return entity


class Aggregate_(exports.Aggregate):  # type: ignore[misc]
    """The interface-level exports of ``aggregate``: the schema text."""

    def schema(self) -> str:
        return _cls().__thalo_schema__
