"""Given/when/then for aggregates, natively: the same JSON path the component takes.

    from thalo.sdk.testing import AggregateTest

    def test_increment():
        test = AggregateTest(Counter).given(Incremented(amount=1, count=1))
        test.when("increment", {"amount": 2}).then(Incremented(amount=2, count=3))
        assert test.state.count == 3

Events and payloads go through JSON exactly as they would across the wasm
boundary, so a test catches what does not survive encoding. Payloads are
validated against the aggregate's ESDL schema as the runtime validates them,
so a payload the runtime would refuse (exit 2) is refused here too, with the
same ``PayloadInvalid`` and the same violations.
"""

from __future__ import annotations

__all__ = ["AggregateTest", "Outcome"]

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from thalo.sdk._aggregate import Aggregate
from thalo.sdk._context import Context
from thalo.sdk._dispatch import EntityCore
from thalo.sdk._errors import Ignore, Rejected

A = TypeVar("A", bound=Aggregate)

# Schemas by ESDL text: parsing (and compiling the validators) once per aggregate class.
_SCHEMAS: dict[str, Any] = {}


def _validate_payload(aggregate_cls: type[Aggregate], command: str, payload: Any) -> None:
    """Validate ``payload`` as the runtime does: ``Schema.validate_command`` of thalo.esdl.

    The schema is the ESDL text the generated base class carries
    (``__thalo_schema__``, the text a built component exports and the registry
    publishes). A hand-written aggregate without one is not validated. Commands
    the schema does not declare are left to the SDK's dispatch, which raises
    ``DispatchError`` for them as before. Raises ``PayloadInvalid``.
    """
    schema = _schema(aggregate_cls)
    if schema is not None and command in schema.commands:
        schema.validate_command(command, payload)


def _schema(aggregate_cls: type[Aggregate]) -> Any:
    """The aggregate's compiled ESDL (``__thalo_schema__``), or None for a hand-written one."""
    text = getattr(aggregate_cls, "__thalo_schema__", None)
    if not isinstance(text, str):
        return None
    schema = _SCHEMAS.get(text)
    if schema is None:
        # This module never runs inside a guest (the build leaves it out), so it may
        # use the host's schema compiler (pyproject's import contract allows it).
        from thalo.esdl import parse

        schema = _SCHEMAS[text] = parse(text, f"{aggregate_cls.__name__}.esdl")
    return schema


def _event_json(event: Any) -> dict[str, Any]:
    if isinstance(event, tuple):
        event_type, data = event
        return {"type": event_type, "data": data}
    event_type = getattr(type(event), "__thalo_event__", None)
    if event_type is None:
        raise TypeError(f"{event!r} is not an event (no __thalo_event__)")
    return {"type": event_type, "data": event.to_json()}


@dataclass
class Outcome:
    """What one command did: its events (decoded), or a rejection, or an ignore."""

    command: str
    events: list[Any] = field(default_factory=list)
    rejected: str | None = None
    ignored: bool = False
    ignore_reason: str | None = None

    def then(self, *expected: Any) -> Outcome:
        """Asserts the command produced exactly ``expected`` (event objects), in order."""
        self._not_refused()
        if list(expected) != self.events:
            raise AssertionError(
                f"{self.command} produced {self.events!r}, expected {list(expected)!r}"
            )
        return self

    def then_rejected(self, containing: str | None = None) -> Outcome:
        """Asserts the command was rejected (with ``containing`` in the reason, if given)."""
        if self.rejected is None:
            raise AssertionError(f"{self.command} was not rejected: {self._what()}")
        if containing is not None and containing not in self.rejected:
            raise AssertionError(
                f"{self.command} was rejected with {self.rejected!r}, "
                f"which does not contain {containing!r}"
            )
        return self

    def then_ignored(self) -> Outcome:
        """Asserts the command was ignored (an idempotent no-op)."""
        if not self.ignored:
            raise AssertionError(f"{self.command} was not ignored: {self._what()}")
        return self

    def _not_refused(self) -> None:
        if self.rejected is not None or self.ignored:
            raise AssertionError(f"{self.command} produced no events: {self._what()}")

    def _what(self) -> str:
        if self.rejected is not None:
            return f"rejected ({self.rejected})"
        if self.ignored:
            return f"ignored ({self.ignore_reason})"
        return f"it produced {self.events!r}"


class AggregateTest(Generic[A]):
    """One entity under test; :meth:`when` applies the events it produces, like the runtime."""

    def __init__(self, aggregate_cls: type[A], id: str = "test-1") -> None:
        self.aggregate_cls = aggregate_cls
        self.id = id
        self._core = EntityCore.create(aggregate_cls, id)

    @property
    def stream_name(self) -> str:
        """The entity's stream, named the Message DB way (``BankAccount`` → ``bankAccount-…``)."""
        name = getattr(self.aggregate_cls, "__thalo_aggregate__", self.aggregate_cls.__name__)
        return f"{name[:1].lower()}{name[1:]}-{self.id}"

    @property
    def state(self) -> A:
        """The aggregate object, to assert on its fields."""
        aggregate: A = self._core.aggregate  # type: ignore[assignment]
        return aggregate

    def given(self, *events: Any) -> AggregateTest[A]:
        """Applies past events (event objects or ``(type, data)`` pairs) through JSON."""
        self._core.apply(json.dumps([_event_json(event) for event in events]))
        return self

    def given_stored(
        self, event_type: str, data: Mapping[str, Any], schema_version: int = 1
    ) -> AggregateTest[A]:
        """Applies an event as an older schema stored it (its ``schemaVersion``), the way a
        replay does: the ESDL defaults filled in, then the aggregate's ``upcast`` hook."""
        event: dict[str, Any] = {"type": event_type, "data": dict(data)}
        schema = _schema(self.aggregate_cls)
        declaration = schema.events.get(event_type) if schema is not None else None
        if declaration is not None and schema_version < declaration.version:
            event["data"] = declaration.with_defaults(event["data"])
            event["schemaVersion"] = schema_version
        self._core.apply(json.dumps([event]))
        return self

    def when(
        self,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        position: int | None = None,
        stream_name: str | None = None,
        message_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> Outcome:
        """Handles ``command`` and applies its events; returns the :class:`Outcome`.

        A payload that breaks the schema raises ``thalo.errors.PayloadInvalid``
        with the violations the runtime reports. Unknown commands and
        undecodable payloads raise the SDK's ``DispatchError``.
        """
        # Validated as decoded from JSON, as the runtime sees it (tuples are lists there).
        body = json.loads(json.dumps(dict(payload or {})))
        _validate_payload(self.aggregate_cls, command, body)
        ctx = Context(
            stream_name=stream_name or self.stream_name,
            message_id=message_id,
            position=position,
            global_position=None,
            metadata=dict(metadata or {}),
            time=time,
        )
        request = json.dumps({"name": command, "payload": body})
        outcome = Outcome(command)
        try:
            events_text = self._core.handle(json.dumps(ctx.to_json()), request)
        except Rejected as exc:
            outcome.rejected = exc.reason
            return outcome
        except Ignore as exc:
            outcome.ignored = True
            outcome.ignore_reason = exc.reason
            return outcome
        self._core.apply(events_text)
        registry = self.aggregate_cls.__thalo_events__
        outcome.events = [
            registry[item["type"]].from_json(item["data"]) for item in json.loads(events_text)
        ]
        return outcome

    def restored(self) -> A:
        """A new aggregate rebuilt from this one's snapshot (checks the round trip)."""
        core = EntityCore.restore(self.aggregate_cls, self.id, self._core.snapshot())
        aggregate: A = core.aggregate  # type: ignore[assignment]
        return aggregate
