"""JSON Schema (draft 2020-12) for command payloads and event data, for the OpenAPI document.

Custom types become ``$defs`` entries referenced with ``$ref``; pass ``ref_template``
(e.g. ``"#/components/schemas/{name}"``) to point the references elsewhere and take
the definitions from ``types_json_schema``.
"""

from __future__ import annotations

__all__ = ["command_json_schema", "event_json_schema", "types_json_schema"]

from collections.abc import Sequence
from typing import Any

from thalo.errors import PayloadInvalid, UnknownCommand, Violation
from thalo.esdl.model import Field, Schema, TypeRef
from thalo.esdl.validator import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN

DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFS = "#/$defs/{name}"

_SCALARS: dict[str, dict[str, Any]] = {
    "String": {"type": "string"},
    "Int": {"type": "integer", "format": "int32", "minimum": INT_MIN, "maximum": INT_MAX},
    "Long": {"type": "integer", "format": "int64", "minimum": LONG_MIN, "maximum": LONG_MAX},
    "Float": {"type": "number", "format": "float"},
    "Double": {"type": "number", "format": "double"},
    "Bool": {"type": "boolean"},
    "Bytes": {"type": "string", "contentEncoding": "base64"},
}


def _type(ref: TypeRef, template: str, used: set[str]) -> dict[str, Any]:
    if ref.item is not None:
        schema: dict[str, Any] = {"type": "array", "items": _type(ref.item, template, used)}
    elif ref.name in _SCALARS:
        schema = dict(_SCALARS[ref.name])
    else:
        assert ref.name is not None
        used.add(ref.name)
        schema = {"$ref": template.format(name=ref.name)}
    return {"anyOf": [schema, {"type": "null"}]} if ref.optional else schema


def _object(title: str, fields: Sequence[Field], template: str, used: set[str]) -> dict[str, Any]:
    return {
        "title": title,
        "type": "object",
        "properties": {f.name: _type(f.type, template, used) for f in fields},
        "required": [f.name for f in fields if not f.type.optional],
        "additionalProperties": False,
    }


def _document(
    schema: Schema, title: str, fields: Sequence[Field], ref_template: str | None
) -> dict[str, Any]:
    used: set[str] = set()
    body = _object(title, fields, ref_template or DEFS, used)
    document = {"$schema": DIALECT, **body}
    if ref_template is None and used:
        document["$defs"] = _definitions(schema, used)
    return document


def _definitions(schema: Schema, names: set[str]) -> dict[str, Any]:
    """The definitions of ``names`` and of every type they reach, in declaration order."""
    todo = list(names)
    while todo:
        extra: set[str] = set()
        for name in todo:
            _object(name, schema.types[name].fields, DEFS, extra)
        todo = sorted(extra - names)
        names |= extra
    return {
        name: _object(name, decl.fields, DEFS, set())
        for name, decl in schema.types.items()
        if name in names
    }


def command_json_schema(
    schema: Schema, name: str, *, ref_template: str | None = None
) -> dict[str, Any]:
    """The payload schema of command ``name``; raises UnknownCommand."""
    command = schema.commands.get(name)
    if command is None:
        raise UnknownCommand(schema.name, name, tuple(schema.commands))
    return _document(schema, f"{schema.name}.{name}", command.params, ref_template)


def event_json_schema(
    schema: Schema, name: str, *, ref_template: str | None = None
) -> dict[str, Any]:
    """The data schema of event ``name``; raises PayloadInvalid for an undeclared event."""
    event = schema.events.get(name)
    if event is None:
        known = ", ".join(schema.events) or "none"
        raise PayloadInvalid(
            f"event {name!r}", (Violation("$", f"unknown event type {name!r} (known: {known})"),)
        )
    return _document(schema, name, event.fields, ref_template)


def types_json_schema(schema: Schema, *, ref_template: str = DEFS) -> dict[str, Any]:
    """Every custom type's schema by name, for a shared definitions section."""
    return {
        name: _object(name, decl.fields, ref_template, set()) for name, decl in schema.types.items()
    }
