"""The ESDL schema model: frozen values the parser builds and every consumer reads.

Source positions ride along for diagnostics but take no part in equality, so a
schema parsed from a file equals the same schema rebuilt from its JSON form.
"""

from __future__ import annotations

__all__ = [
    "SCALARS",
    "Command",
    "Declaration",
    "EventRef",
    "Field",
    "Schema",
    "Span",
    "TypeRef",
]

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from thalo.errors import SchemaError

if TYPE_CHECKING:
    from thalo.esdl.diagnostics import Diagnostic
    from thalo.esdl.validator import CompiledSchema

# ESDL scalar name -> what it means; Int/Float are 32-bit, Long/Double 64-bit.
SCALARS: Mapping[str, str] = MappingProxyType(
    {
        "String": "UTF-8 string",
        "Int": "32-bit signed integer",
        "Long": "64-bit signed integer",
        "Float": "32-bit float",
        "Double": "64-bit float",
        "Bool": "boolean",
        "Bytes": "bytes, base64 in JSON",
    }
)

JSON_FORMAT = 1  # bump when the shape of Schema.to_json changes


@dataclass(frozen=True, slots=True)
class Span:
    """Where a name stands in the source: 1-based line and column, and its length."""

    line: int
    column: int
    length: int = 1


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A type expression: a scalar or custom ``name``, or an array of ``item``; maybe optional."""

    name: str | None
    item: TypeRef | None = None
    optional: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def is_array(self) -> bool:
        return self.item is not None

    @property
    def is_scalar(self) -> bool:
        return self.name is not None and self.name in SCALARS

    @property
    def is_custom(self) -> bool:
        return self.name is not None and self.name not in SCALARS

    def required(self) -> TypeRef:
        """The same type without the outer ``?``."""
        return TypeRef(self.name, self.item, False, self.span)

    def __str__(self) -> str:
        inner = f"[{self.item}]" if self.item is not None else str(self.name)
        return inner + ("?" if self.optional else "")

    @staticmethod
    def parse(text: str) -> TypeRef:
        """Parse the ESDL spelling of a type (``[String?]?``), as written by ``str()``."""
        ref, rest = _parse_type(text.strip())
        if rest:
            raise SchemaError(f"invalid type expression {text!r}")
        return ref


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parse_type(text: str) -> tuple[TypeRef, str]:
    if text.startswith("["):
        item, rest = _parse_type(text[1:])
        if not rest.startswith("]"):
            raise SchemaError(f"invalid type expression: missing ']' before {rest!r}")
        rest = rest[1:]
        optional = rest.startswith("?")
        return TypeRef(None, item, optional), rest[1:] if optional else rest
    match = _NAME_RE.match(text)
    if match is None:
        raise SchemaError(f"invalid type expression {text!r}")
    rest = text[match.end() :]
    optional = rest.startswith("?")
    return TypeRef(match.group(), None, optional), rest[1:] if optional else rest


@dataclass(frozen=True, slots=True)
class Field:
    """A named, typed member of an event, a custom type, or a command's parameters.

    ``default`` (event fields only) is canonical JSON text: the value an event
    stored before the field existed gets when it is upcast (docs/esdl.md).
    """

    name: str
    type: TypeRef
    span: Span | None = field(default=None, compare=False, repr=False)
    default: str | None = None
    default_span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def default_value(self) -> Any:
        """The default as a JSON value (``None`` when there is none, or it is null)."""
        return None if self.default is None else json.loads(self.default)


@dataclass(frozen=True, slots=True)
class EventRef:
    """An event a command may produce; ``optional`` means it may be left out."""

    name: str
    optional: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Command:
    """A command: snake_case name, parameters, and the events it produces.

    ``event_set`` is true for the parenthesized form ``(A | B?)``, where the handler
    returns a list; false for a single ``E`` or ``E?``.
    """

    name: str
    params: tuple[Field, ...]
    events: tuple[EventRef, ...]
    event_set: bool = False
    span: Span | None = field(default=None, compare=False, repr=False)

    def param(self, name: str) -> Field | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True, slots=True)
class Declaration:
    """An ``event`` or a ``type``: a CamelCase name and its fields.

    ``version`` is an event's schema version (1 unless declared, ``event E version 2``):
    recorded as ``schemaVersion`` on every event written, so that replay knows which
    stored events to upcast.
    """

    name: str
    fields: tuple[Field, ...]
    span: Span | None = field(default=None, compare=False, repr=False)
    version: int = 1
    version_span: Span | None = field(default=None, compare=False, repr=False)

    def field_named(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def with_defaults(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` of an event stored before some fields existed, with the defaults of
        those fields filled in: missing ones, and null ones the type requires."""
        filled = dict(data)
        for item in self.fields:
            if item.default is None or filled.get(item.name) is not None:
                continue
            if not item.type.optional or item.name not in filled:  # a null optional stays
                filled[item.name] = item.default_value
        return filled


def _default_text(value: Any) -> str | None:
    """A stored default, re-encoded canonically (it must be JSON text)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"a default must be JSON text, got {type(value).__name__}")
    return canonical_json(json.loads(value))


def canonical_json(value: Any) -> str:
    """The one text of a JSON value that ESDL prints and schemas compare."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def _frozen_map(items: Iterable[Any]) -> Mapping[str, Any]:
    return MappingProxyType({item.name: item for item in items})


@dataclass(frozen=True, eq=False)
class Schema:
    """A compiled ESDL schema: one aggregate, its version, commands, events and types.

    Equality compares content only (no positions, no file name, no warnings); the
    mappings keep declaration order.
    """

    name: str
    version: str
    commands: Mapping[str, Command]
    events: Mapping[str, Declaration]
    types: Mapping[str, Declaration]
    filename: str = field(default="<esdl>", compare=False)
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)
    span: Span | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        name: str,
        version: str,
        commands: Sequence[Command],
        events: Sequence[Declaration] = (),
        types: Sequence[Declaration] = (),
        *,
        filename: str = "<esdl>",
        warnings: tuple[Diagnostic, ...] = (),
        span: Span | None = None,
    ) -> Schema:
        """Build a schema from sequences (no semantic checks: use ``parse`` for that)."""
        return cls(
            name,
            version,
            _frozen_map(commands),
            _frozen_map(events),
            _frozen_map(types),
            filename,
            warnings,
            span,
        )

    def _key(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.version,
            tuple(self.commands.values()),
            tuple(self.events.values()),
            tuple(self.types.values()),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schema):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the content, not the compiled validators (closures); they rebuild lazily."""
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        for name in ("commands", "events", "types"):
            state[name] = dict(state[name])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in ("commands", "events", "types"):
            state[name] = MappingProxyType(state[name])
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"Schema({self.name} {self.version}: {len(self.commands)} commands, "
            f"{len(self.events)} events, {len(self.types)} types)"
        )

    # --- serialization ---------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the registry stores it); ``from_json`` reads it back."""

        def fields(items: Iterable[Field]) -> list[dict[str, Any]]:
            # Keys absent unless used, so schemas without them keep their stored form.
            return [
                {"name": f.name, "type": str(f.type)}
                | ({"default": f.default} if f.default is not None else {})
                for f in items
            ]

        def event(d: Declaration) -> dict[str, Any]:
            body = {"name": d.name, "fields": fields(d.fields)}
            return body | ({"version": d.version} if d.version != 1 else {})

        return {
            "format": JSON_FORMAT,
            "aggregate": self.name,
            "version": self.version,
            "commands": [
                {
                    "name": c.name,
                    "params": fields(c.params),
                    "events": [{"name": e.name, "optional": e.optional} for e in c.events],
                    "event_set": c.event_set,
                }
                for c in self.commands.values()
            ],
            "events": [event(d) for d in self.events.values()],
            "types": [{"name": d.name, "fields": fields(d.fields)} for d in self.types.values()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        """Rebuild a schema from ``to_json`` output; raises SchemaError if malformed.

        The result is checked like parsed source (unknown types, duplicates...), so a
        stored schema cannot smuggle in what the parser would refuse.
        """
        from thalo.esdl.checker import Parsed, check
        from thalo.esdl.diagnostics import Reporter

        try:
            if data.get("format") != JSON_FORMAT:
                raise SchemaError(f"unsupported schema JSON format {data.get('format')!r}")

            def fields(items: Iterable[Mapping[str, Any]]) -> tuple[Field, ...]:
                return tuple(
                    Field(
                        str(f["name"]),
                        TypeRef.parse(str(f["type"])),
                        default=_default_text(f.get("default")),
                    )
                    for f in items
                )

            def declarations(items: Iterable[Mapping[str, Any]]) -> list[Declaration]:
                return [
                    Declaration(str(d["name"]), fields(d["fields"]), version=d.get("version", 1))
                    for d in items
                ]

            parsed = Parsed(
                versions=[(str(data["version"]), Span(0, 0))],
                aggregates=[
                    (
                        str(data["aggregate"]),
                        Span(0, 0),
                        [
                            Command(
                                str(c["name"]),
                                fields(c["params"]),
                                tuple(
                                    EventRef(str(e["name"]), bool(e["optional"]))
                                    for e in c["events"]
                                ),
                                bool(c["event_set"]),
                            )
                            for c in data["commands"]
                        ],
                    )
                ],
                events=declarations(data["events"]),
                types=declarations(data["types"]),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SchemaError(f"malformed schema JSON: {exc!r}") from exc
        # Duplicates in the lists are reported, as they would be in source.
        return check(parsed, Reporter("", "<json>"))

    def to_esdl(self) -> str:
        """Canonical ESDL text: the same schema always prints the same way."""
        from thalo.esdl.printer import print_schema

        return print_schema(self)

    # --- payload validation ----------------------------------------------------

    @functools.cached_property
    def _compiled(self) -> CompiledSchema:
        from thalo.esdl.validator import CompiledSchema

        return CompiledSchema(self)

    def validate_command(self, name: str, payload: Any) -> None:
        """Check a command payload; raises UnknownCommand or PayloadInvalid (every violation)."""
        self._compiled.validate_command(name, payload)

    def validate_event(self, name: str, data: Any) -> None:
        """Check an event's data; raises PayloadInvalid (also for an undeclared event name)."""
        self._compiled.validate_event(name, data)

    def validate_command_events(self, command: str, events: Sequence[tuple[str, Any]]) -> None:
        """Check what a handler returned for ``command``: declared events only, each at most
        once, every required one present, and each event's data valid.

        Raises UnknownCommand or PayloadInvalid with paths like ``$[1].data.amount``.
        """
        self._compiled.validate_command_events(command, events)

    def command_json_schema(self, name: str, *, ref_template: str | None = None) -> dict[str, Any]:
        """JSON Schema (2020-12) of a command's payload; raises UnknownCommand.

        Custom types go in ``$defs``, or are referenced through ``ref_template``
        (``"#/components/schemas/{name}"``) when given: see ``types_json_schema``.
        """
        from thalo.esdl.jsonschema import command_json_schema

        return command_json_schema(self, name, ref_template=ref_template)

    def event_json_schema(self, name: str, *, ref_template: str | None = None) -> dict[str, Any]:
        """JSON Schema (2020-12) of an event's data; raises PayloadInvalid for unknown names."""
        from thalo.esdl.jsonschema import event_json_schema

        return event_json_schema(self, name, ref_template=ref_template)

    def types_json_schema(self, *, ref_template: str = "#/$defs/{name}") -> dict[str, Any]:
        """JSON Schema of every custom type by name (for an OpenAPI components section)."""
        from thalo.esdl.jsonschema import types_json_schema

        return types_json_schema(self, ref_template=ref_template)
