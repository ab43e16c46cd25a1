"""Payload validation: each schema compiles once into closures, one per type.

A check takes a JSON value and returns ``None`` when it is valid (the fast path
allocates nothing) or a list of ``(relative path, message)`` for every violation;
containers prefix their part of the path, so the full JSON path is only built
when something is wrong.
"""

from __future__ import annotations

__all__ = ["CompiledSchema"]

import binascii
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from thalo.errors import PayloadInvalid, UnknownCommand, Violation
from thalo.esdl.model import SCALARS, Command, Field, TypeRef

if TYPE_CHECKING:
    from thalo.esdl.model import Schema

Problems = list[tuple[str, str]]
Check = Callable[[Any], Problems | None]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
FLOAT_MAX = 3.4028234663852886e38  # largest finite 32-bit float
_MISSING = object()


def json_kind(value: Any) -> str:
    """The JSON name of a Python value's kind, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _expected(label: str, value: Any) -> Problems:
    return [("", f"expected {label}, got {json_kind(value)}")]


def _integer(name: str, low: int, high: int) -> Check:
    label = f"{name} ({SCALARS[name]})"

    def check(value: Any) -> Problems | None:
        if type(value) is int and low <= value <= high:
            return None
        if type(value) is int:
            return [("", f"{value} is out of range for {label}: [{low}, {high}]")]
        return _expected(label, value)

    return check


def _number(name: str, limit: float) -> Check:
    label = f"{name} ({SCALARS[name]})"

    def check(value: Any) -> Problems | None:
        kind = type(value)
        if kind is float:
            if math.isfinite(value) and -limit <= value <= limit:
                return None
            return [("", f"{value} is out of range for {label}")]
        if kind is int:
            if -limit <= value <= limit:
                return None
            return [("", f"{value} is out of range for {label}")]
        return _expected(label, value)

    return check


def _string(value: Any) -> Problems | None:
    if type(value) is not str:
        return _expected("String", value)
    if value.isascii():
        return None
    try:  # a lone surrogate (possible from json.loads) could not be stored as UTF-8
        value.encode("utf-8")
    except UnicodeEncodeError:
        return [("", "expected String: not valid Unicode (lone surrogate)")]
    return None


def _bool(value: Any) -> Problems | None:
    return None if type(value) is bool else _expected("Bool", value)


def _bytes(value: Any) -> Problems | None:
    if type(value) is not str:
        return _expected("Bytes (a base64 string)", value)
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return [("", "expected Bytes: not valid base64")]
    return None


_SCALAR_CHECKS: dict[str, Check] = {
    "String": _string,
    "Int": _integer("Int", INT_MIN, INT_MAX),
    "Long": _integer("Long", LONG_MIN, LONG_MAX),
    "Float": _number("Float", FLOAT_MAX),
    "Double": _number("Double", math.inf),
    "Bool": _bool,
    "Bytes": _bytes,
}


def _nullable(check: Check) -> Check:
    def nullable(value: Any) -> Problems | None:
        return None if value is None else check(value)

    return nullable


def _array(item: Check, label: str) -> Check:
    def check(value: Any) -> Problems | None:
        if type(value) is not list:
            return _expected(label, value)
        problems: Problems | None = None
        for index, element in enumerate(value):
            found = item(element)
            if found:
                problems = problems or []
                problems.extend((f"[{index}]{path}", message) for path, message in found)
        return problems

    return check


def _object(label: str, fields: Sequence[tuple[str, Check, bool]]) -> Check:
    """``fields``: (name, check of a present non-null value... or null, optional)."""
    names = tuple(name for name, _, _ in fields)
    known = ", ".join(names) or "no fields"

    def check(value: Any) -> Problems | None:
        if type(value) is not dict:
            return _expected(f"object {label}", value)
        problems: Problems | None = None
        present = 0
        for name, field_check, optional in fields:
            element = value.get(name, _MISSING)
            if element is _MISSING:
                if not optional:
                    problems = problems or []
                    problems.append((f".{name}", "required field is missing"))
                continue
            present += 1
            found = field_check(element)
            if found:
                problems = problems or []
                problems.extend((f".{name}{path}", message) for path, message in found)
        if present != len(value):
            problems = problems or []
            for key in value:
                if key not in names:
                    problems.append((_member_path(key), f"unknown field ({label} has {known})"))
        return problems

    return check


def _member_path(key: Any) -> str:
    text = str(key)
    return f".{text}" if text.isidentifier() else f"[{text!r}]"


def _render(prefix: str, problems: Problems) -> tuple[Violation, ...]:
    return tuple(Violation(prefix + path, message) for path, message in problems)


class CompiledSchema:
    """The validators of one schema, built once (``Schema`` caches an instance)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._types: dict[str, Check] = {}
        self.commands: dict[str, Check] = {
            name: self._fields(f"command {name}", command.params)
            for name, command in schema.commands.items()
        }
        self.events: dict[str, Check] = {
            name: self._fields(name, decl.fields) for name, decl in schema.events.items()
        }

    def _fields(self, label: str, fields: Sequence[Field]) -> Check:
        return _object(label, [(f.name, self._type(f.type), f.type.optional) for f in fields])

    def _type(self, ref: TypeRef) -> Check:
        """The check of a value of type ``ref`` (null allowed only if ``ref`` is optional)."""
        check: Check
        if ref.item is not None:
            check = _array(self._type(ref.item), f"array {ref.required()}")
        elif ref.name in _SCALAR_CHECKS:
            check = _SCALAR_CHECKS[ref.name]
        else:
            assert ref.name is not None
            check = self._custom(ref.name)
        return _nullable(check) if ref.optional else check

    def _custom(self, name: str) -> Check:
        if name not in self._types:
            self._types[name] = self._fields(name, self.schema.types[name].fields)
        return self._types[name]

    # --- entry points --------------------------------------------------------

    def check_value(self, ref: TypeRef, value: Any) -> Problems | None:
        """The problems of ``value`` as a value of type ``ref`` (relative paths), or None."""
        return self._type(ref)(value)

    def validate_command(self, name: str, payload: Any) -> None:
        check = self.commands.get(name)
        if check is None:
            raise UnknownCommand(self.schema.name, name, tuple(self.schema.commands))
        problems = check(payload)
        if problems:
            raise PayloadInvalid(f"payload of command {name!r}", _render("$", problems))

    def validate_event(self, name: str, data: Any) -> None:
        check = self.events.get(name)
        if check is None:
            raise PayloadInvalid(f"event {name!r}", (self._unknown_event("$", name),))
        problems = check(data)
        if problems:
            raise PayloadInvalid(f"data of event {name!r}", _render("$", problems))

    def _unknown_event(self, path: str, name: str) -> Violation:
        known = ", ".join(self.schema.events) or "none"
        return Violation(path, f"unknown event type {name!r} (known: {known})")

    def validate_command_events(self, name: str, events: Sequence[tuple[str, Any]]) -> None:
        command = self.schema.commands.get(name)
        if command is None:
            raise UnknownCommand(self.schema.name, name, tuple(self.schema.commands))
        declared = {ref.name: ref for ref in command.events}
        violations: list[Violation] = []
        seen: set[str] = set()
        for index, (event_type, data) in enumerate(events):
            if event_type not in declared:
                violations.append(
                    Violation(
                        f"$[{index}].type",
                        f"command {name!r} does not produce {event_type!r} "
                        f"(it declares {_signature(command)})",
                    )
                )
                continue
            if event_type in seen:
                violations.append(
                    Violation(f"$[{index}].type", f"event {event_type!r} produced more than once")
                )
            seen.add(event_type)
            problems = self.events[event_type](data)
            if problems:
                violations.extend(_render(f"$[{index}].data", problems))
        for ref in command.events:
            if not ref.optional and ref.name not in seen:
                violations.append(Violation("$", f"required event {ref.name!r} is missing"))
        if violations:
            raise PayloadInvalid(f"events of command {name!r}", tuple(violations))


def _signature(command: Command) -> str:
    refs = " | ".join(ref.name + ("?" if ref.optional else "") for ref in command.events)
    return f"({refs})" if command.event_set else refs
