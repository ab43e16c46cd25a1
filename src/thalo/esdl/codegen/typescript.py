"""ESDL -> the typed TypeScript module of a TypeScript/JavaScript guest (and HTTP clients).

One ``.ts`` module importing the guest SDK (``@thalo/sdk``, sdk/typescript): an
interface per type, event and command payload, a constructor function per event
(``Incremented({...})`` makes the ``{ type, data }`` envelope a handler returns;
events cross as envelopes because two events may share a shape), the tagged event
union ``{Aggregate}Event``, the ``SPEC`` the SDK decodes and validates with, and the
abstract ``{Aggregate}Base`` class with one ``handle<Command>`` and one
``apply<Event>`` method each, which the aggregate subclasses.
"""

from __future__ import annotations

import json

__all__ = ["generate_typescript"]

from collections.abc import Sequence

from thalo.errors import SchemaError
from thalo.esdl.model import Command, Field, Schema, TypeRef

_SCALARS = {
    "String": "string",
    "Int": "number",
    "Long": "number",
    "Float": "number",
    "Double": "number",
    "Bool": "boolean",
    "Bytes": "string",
}
_NOTES = {
    "Long": "64-bit integer: exact only up to 2^53 in JavaScript",
    "Bytes": "base64",
}
_I = "  "


def ts_type(ref: TypeRef) -> str:
    """``[String?]?`` -> ``(string | null)[] | null``."""
    if ref.item is not None:
        item = ts_type(ref.item)
        inner = f"({item})[]" if " " in item else f"{item}[]"
    else:
        assert ref.name is not None
        inner = _SCALARS.get(ref.name, ref.name)
    return f"{inner} | null" if ref.optional else inner


def pascal_case(name: str) -> str:
    """``deposit_funds`` -> ``DepositFunds``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _members(fields: Sequence[Field]) -> list[str]:
    lines = []
    for item in fields:
        ref = item.type
        while ref.item is not None:
            ref = ref.item
        note = _NOTES.get(ref.name or "")
        if note:
            lines.append(f"{_I}/** {note} */")
        mark = "?" if item.type.optional else ""
        lines.append(f"{_I}{item.name}{mark}: {ts_type(item.type)};")
    return lines


def _interface(doc: str, name: str, fields: Sequence[Field]) -> list[str]:
    body = _members(fields)
    if not body:
        return [f"/** {doc} */", f"export interface {name} {{}}"]
    return [f"/** {doc} */", f"export interface {name} {{", *body, "}"]


def _envelope(name: str) -> str:
    return f'Envelope<"{name}", {name}>'


def _returns(command: Command) -> str:
    if command.event_set:
        return f"({' | '.join(_envelope(r.name) for r in command.events)})[]"
    (ref,) = command.events
    return f"{_envelope(ref.name)} | null" if ref.optional else _envelope(ref.name)


def _quoted(command: Command) -> str:
    return ", ".join(f'"{ref.name}"' for ref in command.events)


def _fields_spec(fields: Sequence[Field]) -> str:
    return "[" + ", ".join(f'["{f.name}", "{f.type}"]' for f in fields) + "]"


def _table(key: str, rows: dict[str, str]) -> list[str]:
    if not rows:
        return [f"{_I}{key}: {{}},"]
    return [f"{_I}{key}: {{", *(f"{_I * 2}{k}: {v}," for k, v in rows.items()), f"{_I}}},"]


def _spec(schema: Schema) -> list[str]:
    """The ``SPEC`` constant: field lists with ESDL type spellings, for the SDK."""
    lines = [
        "/** The schema as the SDK reads it: field lists with their ESDL types. */",
        "export const SPEC: SchemaSpec = {",
        f"{_I}aggregate: AGGREGATE,",
        f"{_I}version: VERSION,",
        f"{_I}schema: SCHEMA,",
        *_table("types", {d.name: _fields_spec(d.fields) for d in schema.types.values()}),
        *_table("events", {d.name: _fields_spec(d.fields) for d in schema.events.values()}),
        f"{_I}commands: {{",
    ]
    for c in schema.commands.values():
        lines.append(
            f"{_I * 2}{c.name}: {{ params: {_fields_spec(c.params)}, events: [{_quoted(c)}] }},"
        )
    lines.append(f"{_I}}},")
    versioned = {
        d.name: f"{{ version: {d.version}, defaults: {_defaults(d.fields)} }}"
        for d in schema.events.values()
        if d.version > 1
    }
    if versioned:  # what AggregateTest.givenStored fills, as a replay does
        lines += _table("upcasting", versioned)
    return [*lines, "};"]


def _defaults(fields: Sequence[Field]) -> str:
    pairs = [f"{json.dumps(f.name)}: {f.default}" for f in fields if f.default is not None]
    return "{ " + ", ".join(pairs) + " }" if pairs else "{}"


def _string_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${")
    return f"`{escaped}`"


def generate_typescript(schema: Schema, *, source_name: str | None = None) -> str:
    """The TypeScript module for ``schema``; raises SchemaError on a generated-name clash."""
    payloads = {name: f"{pascal_case(name)}Command" for name in schema.commands}
    generated = {*payloads.values(), "Envelope", "Context", "Aggregate", "SchemaSpec"}
    generated |= {f"{schema.name}Event", f"{schema.name}Base", "SPEC", "SCHEMA"}
    generated |= {"AGGREGATE", "VERSION"}
    clashes = sorted(generated & {*schema.types, *schema.events})
    if clashes:
        raise SchemaError(
            f"cannot generate TypeScript: {', '.join(clashes)} would name both a declaration "
            "and a generated interface"
        )
    origin = f"from {source_name} " if source_name else ""
    name = schema.name
    lines = [
        f"// Generated by `thalo codegen` {origin}({name} {schema.version}). Do not edit.",
        "",
        'import { Aggregate } from "@thalo/sdk";',
        'import type { Context, Envelope, SchemaSpec } from "@thalo/sdk";',
        "",
        "export type { Context, Envelope };",
        "",
        "/** The ESDL schema this module was generated from. */",
        f"export const SCHEMA = {_string_literal(schema.to_esdl())};",
        f'export const AGGREGATE = "{name}";',
        f'export const VERSION = "{schema.version}";',
    ]
    for decl in schema.types.values():
        lines += ["", *_interface(f"Type {decl.name}.", decl.name, decl.fields)]
    for decl in schema.events.values():
        lines += ["", *_interface(f"Event {decl.name}.", decl.name, decl.fields)]
        lines += [
            f"/** Makes the {decl.name} event a handler returns: {{ type, data }}. */",
            f"export function {decl.name}(data: {decl.name}): {_envelope(decl.name)} {{",
            f'{_I}return {{ type: "{decl.name}", data }};',
            "}",
        ]
    for command in schema.commands.values():
        doc = f"Payload of command {command.name}."
        lines += ["", *_interface(doc, payloads[command.name], command.params)]
    envelopes = [_envelope(event) for event in schema.events] or ["never"]
    lines += ["", f"/** Every event of {name}. */", f"export type {name}Event ="]
    lines += [f"{_I}| {e}" for e in envelopes]
    lines[-1] += ";"
    lines += ["", *_spec(schema), ""]
    lines += [
        f"/** Base class of the {name} aggregate: subclass it and implement every method. */",
        f"export abstract class {name}Base extends Aggregate {{",
        f"{_I}static readonly spec: SchemaSpec = SPEC;",
    ]
    for command in schema.commands.values():
        lines += [
            f"{_I}/** Decide {command.name}: return its events, or throw Rejected or Ignore. */",
            f"{_I}abstract handle{pascal_case(command.name)}(ctx: Context, command: "
            f"{payloads[command.name]}): {_returns(command)};",
        ]
    for event in schema.events:
        lines += [
            f"{_I}/** Apply {event} to this entity's state. */",
            f"{_I}abstract apply{event}(event: {event}): void;",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"
