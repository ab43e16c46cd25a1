"""A handle on one entity living inside a component instance.

The entity's state stays in the guest; the handle passes JSON text in and out.
If its instance traps (this entity's call or another's), the handle is lost for
good: every later call raises :class:`EntityLost` and the caller rebuilds the
entity from its events (or snapshot) with a fresh handle.
"""

from __future__ import annotations

__all__ = ["Entity"]

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from thalo.wasm._calls import CallOutcome
from thalo.wasm._errors import (
    EntityLost,
    GuestAnswer,
    GuestDecodeFailed,
    GuestIgnored,
    GuestRejected,
    GuestUnknownCommand,
    GuestUnknownEvent,
)
from thalo.wasm.engine import TICK_SECONDS

if TYPE_CHECKING:
    from wasmtime.component import ResourceAny

    from thalo.wasm.instance import Instance

_ANSWERS: dict[str, type[GuestAnswer]] = {
    "unknown-command": GuestUnknownCommand,
    "unknown-event": GuestUnknownEvent,
    "decode": GuestDecodeFailed,
}

Event = tuple[str, dict[str, Any]]
# The ctx object of the contract or its JSON text; a command payload, its JSON, or none.
Ctx = Mapping[str, Any] | str | bytes
Payload = Mapping[str, Any] | str | bytes | None


def answer_error(case: str, detail: str | None) -> GuestAnswer:
    """The exception for a WIT ``error`` case returned by the guest."""
    if case == "rejected":
        return GuestRejected(detail or "")
    if case == "ignored":
        return GuestIgnored(detail)
    kind = _ANSWERS.get(case)
    if kind is None:
        return GuestDecodeFailed(f"guest returned an unknown error case {case!r}: {detail}")
    return kind(detail)


def _unwrap(outcome: CallOutcome) -> Any:
    ok, value = outcome
    if ok:
        return value
    raise answer_error(*value)


def events_json(events: str | bytes | Sequence[Any], position: int | None = None) -> bytes:
    """An ``apply`` batch as JSON: text passes through; ``(type, data)`` pairs or dicts encode.

    With ``position`` (that of the first event) each encoded event carries its own.
    """
    if isinstance(events, str):
        return events.encode()
    if isinstance(events, bytes):
        return events
    items = [
        {"type": item[0], "data": item[1]} if isinstance(item, tuple) else item for item in events
    ]
    if position is not None:
        items = [
            {**item, "position": position + i} if isinstance(item, dict) else item
            for i, item in enumerate(items)
        ]
    return orjson.dumps(items)


def _request(
    ctx: Ctx, command: str, payload: Payload, position: int | None = None
) -> tuple[str | bytes, bytes]:
    """The ctx and ``{"name", "payload"}`` JSON of a ``handle``/``execute`` call.

    ``position`` (where the command's first event will be stored) is added to a ctx
    object as ``eventPosition``; ctx given as text passes unchanged.
    """
    if isinstance(ctx, (str, bytes)):
        ctx_json = ctx
    elif position is None:
        ctx_json = orjson.dumps(ctx)
    else:
        ctx_json = orjson.dumps({**ctx, "eventPosition": position})
    if payload is None:
        body = b"{}"
    elif isinstance(payload, str):
        body = payload.encode()
    elif isinstance(payload, bytes):
        body = payload
    else:
        body = orjson.dumps(payload)
    return ctx_json, b'{"name":' + orjson.dumps(command) + b',"payload":' + body + b"}"


def _events(text: str) -> list[Event]:
    """The guest's JSON array of events as ``(type, data)`` pairs."""
    try:
        return [(event["type"], event["data"]) for event in orjson.loads(text)]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise GuestDecodeFailed(f"guest returned malformed events: {exc}") from None


class Entity:
    """One entity in a component instance; methods raise the WIT error cases as exceptions.

    Not for concurrent use from two threads (calls into one instance are serialized,
    so that would only wait).
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_instance",
        "_resource",
        "id",
        "next_position",
        "resource_ptr",
    )

    def __init__(self, instance: Instance, id: str, resource: ResourceAny) -> None:
        self.id = id
        # The stream position of the next event this entity will apply, when the host
        # knows it (a replay sets it); passed to the guest, which seeds ``random`` by it.
        self.next_position: int | None = None
        self._instance = instance
        self._resource = resource
        self.resource_ptr = resource.ptr()
        self._closed = False
        instance.register(self)

    @property
    def alive(self) -> bool:
        """False once closed, or once its instance died or was retired for another
        entity's memory: then only rebuilding helps."""
        return not self._closed and self._instance.hosts(self.id)

    def _live(self) -> Instance:
        if self._closed:
            raise EntityLost(self.id, "its handle was closed")
        return self._instance

    def apply(
        self,
        events: str | bytes | Sequence[Any],
        *,
        seconds: float | None = None,
        count: int | None = None,
        wait: bool = True,
    ) -> None:
        """Applies a batch in one call: JSON text, or ``(type, data)`` pairs, or dicts.

        The budget is the call budget once per event (``count``, or the length of a
        sequence; JSON text without ``count`` is one event's worth): each stored
        event was applied once within a call's budget, so a replay of events the
        module wrote itself always fits. ``seconds`` overrides it.
        Raises ``GuestUnknownEvent`` / ``GuestDecodeFailed`` (the state is left as it
        was), a ``GuestError`` on a trap, ``EntityLost`` if gone; without ``wait``,
        ``InstanceBusy`` (nothing ran) when another call holds the instance.
        """
        instance = self._live()
        if count is None and not isinstance(events, (str, bytes)):
            count = len(events)
        if seconds is None and count is not None and count > 1:
            seconds = instance.module.limits.call_seconds * count
        ticks = None if seconds is None else max(1, round(seconds / TICK_SECONDS))
        position = self.next_position
        body = events_json(events, position)
        _unwrap(instance.call(instance.apply_call, self, body, ticks=ticks, wait=wait))
        if position is not None:
            self.next_position = None if count is None else position + count

    def handle_json(self, ctx: str | bytes, command: str | bytes, *, wait: bool = True) -> str:
        """Raw ``handle``: ctx and ``{"name", "payload"}`` JSON in, JSON array of events out."""
        instance = self._live()
        call = instance.call(instance.handle_call, self, ctx, command, wait=wait)
        result: str = _unwrap(call)
        return result

    def execute_json(self, ctx: str | bytes, command: str | bytes, *, wait: bool = True) -> str:
        """Raw ``execute``: :meth:`handle_json` whose events the guest has also applied."""
        instance = self._live()
        call = instance.call(instance.execute_call, self, ctx, command, wait=wait)
        result: str = _unwrap(call)
        return result

    def handle(
        self, ctx: Ctx, command: str, payload: Payload = None, *, wait: bool = True
    ) -> list[Event]:
        """Decides ``command``; returns ``[(event_type, data), ...]`` (not yet applied).

        ``ctx`` is the ctx object of the contract (``streamName``, ``messageId``,
        ``position``, ``globalPosition``, ``metadata``, ``time``) or its JSON text.
        Raises ``GuestRejected``, ``GuestIgnored``, ``GuestUnknownCommand``,
        ``GuestDecodeFailed``, a ``GuestError`` on a trap, ``EntityLost`` if gone;
        without ``wait``, ``InstanceBusy`` (nothing ran) when another call holds the
        instance (the caller on an event loop then runs it on a worker thread).
        """
        request = _request(ctx, command, payload, self.next_position)
        return _events(self.handle_json(*request, wait=wait))

    def execute(
        self, ctx: Ctx, command: str, payload: Payload = None, *, wait: bool = True
    ) -> list[Event]:
        """:meth:`handle` and :meth:`apply` of its events in one guest call (one crossing less).

        Same arguments, result and errors as :meth:`handle`; on an error the state is
        unchanged, on success it already includes the returned events. A caller that
        then fails to store them must rebuild the entity (or :meth:`close` it).
        """
        position = self.next_position
        events = _events(self.execute_json(*_request(ctx, command, payload, position), wait=wait))
        if position is not None:
            self.next_position = position + len(events)
        return events

    def snapshot(self) -> str:
        """The entity's state as JSON text, for :meth:`WasmModule.restore`."""
        instance = self._live()
        result: str = _unwrap(instance.call(instance.snapshot_call, self))
        return result

    def close(self) -> None:
        """Drops the entity inside the guest (idempotent; a no-op if the instance died)."""
        if self._closed:
            return
        self._closed = True
        self._instance.drop(self, self._resource)

    def __enter__(self) -> Entity:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "alive" if self.alive else "lost"
        return f"<Entity {self._instance.module.name} {self.id!r} {state}>"
