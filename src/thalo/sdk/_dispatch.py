"""Turns the JSON strings of the WIT contract into calls on an aggregate, and back.

The component glue and the native test helper both go through :class:`EntityCore`,
so an aggregate behaves the same in plain CPython and inside wasm.
"""

from __future__ import annotations

__all__ = ["EntityCore"]

import json
from collections.abc import Callable
from typing import Any

from thalo.sdk._aggregate import Aggregate
from thalo.sdk._codec import snake_case
from thalo.sdk._context import Context
from thalo.sdk._errors import DispatchError

# Built once: json.dumps with non-default arguments builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_ENCODE_SNAPSHOT = json.JSONEncoder(separators=(",", ":"), sort_keys=True, allow_nan=False).encode

# Set by the component glue: called with a seed text before each command is decided,
# so that ``random`` draws the same numbers on every replay. None natively (tests keep
# the process's own ``random``).
seed_hook: Callable[[str], None] | None = None
# The entity applying events right now (only while ``seed_hook`` is set): ``random``
# seeds from its id and ``position`` at the first draw of each event.
applying: EntityCore | None = None

# Per aggregate class: event type -> (method name, event class), command -> method name.
_ROUTES: dict[type[Aggregate], tuple[dict[str, tuple[str, type[Any]]], dict[str, str]]] = {}


def _routes(cls: type[Aggregate]) -> tuple[dict[str, tuple[str, type[Any]]], dict[str, str]]:
    found = _ROUTES.get(cls)
    if found is None:
        events = {
            name: (f"apply_{snake_case(name)}", event_cls)
            for name, event_cls in cls.__thalo_events__.items()
        }
        commands = {}
        for name in cls.__thalo_commands__:
            method = f"handle_{name}"
            if not hasattr(cls, method):
                method = f"handle_{snake_case(name)}"
            commands[name] = method
        found = _ROUTES[cls] = (events, commands)
    return found


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError) as exc:
        raise DispatchError("decode", f"{what} is not valid JSON: {exc}") from None


class EntityCore:
    """One aggregate instance behind the WIT methods, speaking JSON text.

    Raises :class:`DispatchError`, ``Rejected`` or ``Ignore``; anything else is a bug
    in the aggregate and propagates (inside wasm it becomes a trap).
    """

    __slots__ = ("aggregate", "position", "unseeded")

    def __init__(self, aggregate: Aggregate, position: int | None = None) -> None:
        self.aggregate = aggregate
        # The stream position of the next event to apply, when known: events from the
        # host carry theirs, a command's ctx says where its events go (eventPosition).
        self.position = position
        self.unseeded = False

    @classmethod
    def create(cls, aggregate_cls: type[Aggregate], id: str) -> EntityCore:
        """A fresh entity in its initial state (its first event is at position 0)."""
        return cls(aggregate_cls(id), 0)

    @classmethod
    def restore(cls, aggregate_cls: type[Aggregate], id: str, snapshot: str) -> EntityCore:
        """An entity rebuilt from the JSON text of :meth:`snapshot`."""
        state = _loads(snapshot, "snapshot")
        if not isinstance(state, dict):
            raise DispatchError("decode", "snapshot must be a JSON object")
        try:
            return cls(aggregate_cls.from_snapshot(id, state))
        except (KeyError, TypeError, ValueError) as exc:
            raise DispatchError(
                "decode", f"snapshot does not fit {aggregate_cls.__name__}: {exc}"
            ) from None

    def apply(self, events: str) -> None:
        """Applies a JSON array of ``{"type", "data"}`` objects.

        Every event is decoded before the first is applied, so a bad batch leaves the
        state untouched.
        """
        batch = _loads(events, "events")
        if not isinstance(batch, list):
            raise DispatchError("decode", "events must be a JSON array")
        self._apply_batch(batch)

    def _apply_batch(self, batch: list[Any]) -> None:
        """Decodes every ``{"type", "data"}`` of ``batch``, then applies them in order."""
        routes, _ = _routes(type(self.aggregate))
        aggregate = self.aggregate
        # Per batch: event type -> (bound apply method, decoder), for the types present.
        bound: dict[str, tuple[Any, Any]] = {}
        decoded: list[tuple[Any, Any]] = []
        append = decoded.append
        try:
            for event in batch:
                kind = event["type"]
                route = bound.get(kind)
                if route is None:
                    method, event_cls = routes[kind]
                    route = bound[kind] = (getattr(aggregate, method), event_cls.from_json)
                if "schemaVersion" in event:  # stored by an older schema: upcast first
                    data = aggregate.upcast(kind, event["schemaVersion"], event["data"])
                    append((route[0], route[1](data)))
                    continue
                append((route[0], route[1](event["data"])))
        except Exception:
            _explain_bad_event(routes, batch, len(decoded), aggregate)
            raise
        if seed_hook is None:
            for apply, value in decoded:
                apply(value)
            return
        # Replayable random: the component's ``random`` seeds itself from this entity's
        # id and ``position`` at the first draw of each event (``unseeded``), so events
        # that never draw cost two attribute stores, not a seed string and a call.
        global applying
        applying = self
        position = self.position
        try:
            for (apply, value), event in zip(decoded, batch, strict=True):
                given = event.get("position")
                if type(given) is int:
                    position = given
                self.position = position
                self.unseeded = True
                apply(value)
                if position is not None:
                    position += 1
        finally:
            applying = None
        self.position = position

    def handle(self, ctx: str, command: str) -> str:
        """Decides ``{"name", "payload"}`` under ``ctx``; returns a JSON array of events."""
        return _ENCODE(self.handle_decoded(ctx, command))

    def execute(self, ctx: str, command: str) -> str:
        """:meth:`handle`, then :meth:`apply` of its events: one guest call instead of two.

        The events go through the replay path's decoders (``from_json`` of their
        ``data``), all before the first is applied, so the state ends as a replay of
        them would leave it; the JSON is encoded before applying. Returns that JSON.
        """
        events = self.handle_decoded(ctx, command)
        text = _ENCODE(events)
        self._apply_batch(events)
        return text

    def _seed_command(self, ctx: str, context: dict[str, Any]) -> None:
        """Seeds ``random`` for deciding a command: by entity and ctx (command id,
        position, time), and learns where the command's events will be stored."""
        position = context.get("eventPosition")
        if type(position) is int:
            self.position = position
        hook = seed_hook
        if hook is not None:
            hook(f"handle\0{self.aggregate.id}\0{ctx}")

    def handle_decoded(self, ctx: str, command: str) -> list[dict[str, Any]]:
        """:meth:`handle`, but returning the events before JSON encoding."""
        request = _loads(command, "command")
        if not isinstance(request, dict) or not isinstance(request.get("name"), str):
            raise DispatchError("decode", 'command must be an object {"name", "payload"}')
        name: str = request["name"]
        aggregate_cls = type(self.aggregate)
        spec = aggregate_cls.__thalo_commands__.get(name)
        if spec is None:
            raise DispatchError("unknown-command", name)
        payload = request.get("payload", {})
        if not isinstance(payload, dict):
            raise DispatchError("decode", f"payload of {name} must be a JSON object")
        context_data = _loads(ctx, "ctx")
        if not isinstance(context_data, dict):
            raise DispatchError("decode", "ctx must be a JSON object")
        self._seed_command(ctx, context_data)
        try:
            context = Context.from_json(context_data)
        except ValueError as exc:
            raise DispatchError("decode", str(exc)) from None
        try:
            kwargs = spec.decode(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise DispatchError(
                "decode", f"payload of {name}: {type(exc).__name__}: {exc}"
            ) from None
        _, commands = _routes(aggregate_cls)
        result = getattr(self.aggregate, commands[name])(context, **kwargs)
        return _encode_events(name, spec.events, result)

    def snapshot(self) -> str:
        """The state as JSON text (the aggregate's :meth:`~Aggregate.to_snapshot`)."""
        try:
            state = self.aggregate.to_snapshot()
            return _ENCODE_SNAPSHOT(state)
        except (TypeError, ValueError) as exc:
            raise DispatchError("decode", f"cannot encode snapshot: {exc}") from None


def _encode_events(command: str, allowed: tuple[str, ...], result: Any) -> list[dict[str, Any]]:
    if result is None:
        items: list[Any] = []
    elif isinstance(result, (list, tuple)):
        items = [item for item in result if item is not None]
    else:
        items = [result]
    encoded = []
    for item in items:
        event_type = getattr(type(item), "__thalo_event__", None)
        if event_type is None:
            raise TypeError(f"handle_{command} returned {item!r}, which is not an event")
        if event_type not in allowed:
            raise TypeError(
                f"handle_{command} returned a {event_type} event, but the schema says "
                f"{command} emits only {', '.join(allowed) or 'nothing'}"
            )
        encoded.append({"type": event_type, "data": item.to_json()})
    return encoded


def _explain_bad_event(
    routes: dict[str, tuple[str, type[Any]]], batch: list[Any], index: int, aggregate: Aggregate
) -> None:
    """Raises the precise DispatchError for ``batch[index]``, which failed to decode
    (after its upcast, for an event stored by an older schema)."""
    event = batch[index]
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise DispatchError("decode", f"events[{index}] must be an object with a type")
    route = routes.get(event["type"])
    if route is None:
        raise DispatchError("unknown-event", event["type"])
    data = event.get("data")
    if not isinstance(data, dict):
        raise DispatchError("decode", f"events[{index}].data must be an object")
    version = event.get("schemaVersion")
    if version is not None:
        data = aggregate.upcast(event["type"], version, data)
    try:
        route[1].from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        upcast = f" (stored at schema version {version}, upcast)" if version is not None else ""
        raise DispatchError(
            "decode", f"events[{index}] ({event['type']}){upcast}: {type(exc).__name__}: {exc}"
        ) from None
