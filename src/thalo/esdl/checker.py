"""The semantic checks of ESDL: names, references, duplicates, recursion, version.

One pass over what the parser found reports every problem at its position; the
same checks run on schemas rebuilt from JSON, so nothing a source file could not
hold gets in another way.
"""

from __future__ import annotations

__all__ = ["Parsed", "check", "check_schema", "snake_case"]

import dataclasses
import keyword
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from thalo.esdl.diagnostics import Reporter, Severity, schema_error
from thalo.esdl.model import SCALARS, Command, Declaration, Field, Schema, Span, TypeRef


@dataclass
class Parsed:
    """What the source declares, in order, before any checking (duplicates included)."""

    versions: list[tuple[str, Span]] = field(default_factory=list)
    aggregates: list[tuple[str, Span, list[Command]]] = field(default_factory=list)
    events: list[Declaration] = field(default_factory=list)
    types: list[Declaration] = field(default_factory=list)
    # (line, column) of a block's name -> line of its closing brace (for the formatter).
    block_ends: dict[tuple[int, int], int] = field(default_factory=dict)
    # Default values that are not JSON (a bad string escape): message, where.
    bad_defaults: list[tuple[str, Span]] = field(default_factory=list)

    def end_of(self, span: Span | None) -> int:
        return self.block_ends.get((span.line, span.column), 0) if span else 0


_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
MAX_ARRAY_DEPTH = 32  # keeps every recursive consumer (validators, codegen) far from limits
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")

# Names the generated code needs for itself (see codegen/python.py).
_BUILTINS = ("str", "int", "float", "bool", "bytes", "list", "dict")
_RESERVED_FIELDS = frozenset({*keyword.kwlist, *_BUILTINS, "to_json", "from_json"})
_RESERVED_PARAMS = frozenset({*keyword.kwlist, "self", "ctx"})
_PYTHON_NAMES = ("Aggregate", "CommandSpec", "Context", "Any", "ClassVar", "SCHEMA")
_RESERVED_DECLARATIONS = frozenset({*SCALARS, *_PYTHON_NAMES, "None", "True", "False"})
_CASES = {
    "aggregate": ("CamelCase", "BankAccount"),
    "event": ("CamelCase", "OpenedAccount"),
    "type": ("CamelCase", "OpenedAccount"),
    "command": ("snake_case", "deposit_funds"),
    "parameter": ("snake_case", "amount_due"),
    "field": ("snake_case", "amount_due"),
}


def snake_case(name: str) -> str:
    """``OpenedAccount`` -> ``opened_account``; ``HTTPRequest`` -> ``http_request``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class _Checker:
    """One pass over the parsed declarations that reports every semantic problem."""

    def __init__(self, source: Reporter, complete: bool) -> None:
        self.source = source
        # After a syntax error some declarations are missing: skip the checks that
        # would only report their absence.
        self.complete = complete

    def error(self, message: str, span: Span | None) -> None:
        self.source.report(message, span)

    def warn(self, message: str, span: Span | None) -> None:
        self.source.report(message, span, Severity.WARNING)

    def check(self, parsed: Parsed) -> Schema | None:
        version = self.check_version(parsed.versions)
        aggregate = self.check_aggregate(parsed.aggregates)
        self.check_declarations(parsed.events, parsed.types, aggregate)
        events = _first_by_name(parsed.events)
        types = _first_by_name(parsed.types)
        for decl in [*parsed.events, *parsed.types]:
            self.check_fields(decl.fields, "field", _RESERVED_FIELDS, events, types)
        for message, span in parsed.bad_defaults:
            self.error(message, span)
        self.check_versions(parsed.events, parsed.types)
        commands = self.check_commands(aggregate[2] if aggregate else [], events, types)
        self.check_recursion(parsed.types)
        if self.complete:
            self.check_unused(commands, parsed.events, parsed.types)
        if version is None or aggregate is None:
            return None
        schema = Schema.build(
            aggregate[0],
            version,
            commands,
            list(events.values()),
            list(types.values()),
            filename=self.source.filename,
            span=aggregate[1],
        )
        if not self.source.errors():
            self.check_defaults(schema)
        return schema

    def check_versions(self, events: Sequence[Declaration], types: Sequence[Declaration]) -> None:
        """Event schema versions are whole numbers from 1; defaults belong to event fields."""
        for decl in events:
            if type(decl.version) is not int or decl.version < 1:
                self.error(
                    f"event {decl.name!r}: version must be a whole number of at least 1",
                    decl.version_span,
                )
        for decl in types:
            for item in decl.fields:
                if item.default is not None:
                    self.error(
                        f"field {item.name!r} of type {decl.name!r}: only event fields take "
                        "a default (it fills events stored before the field existed)",
                        item.default_span or item.span,
                    )

    def check_defaults(self, schema: Schema) -> None:
        """Each default is a valid value of its field's type (run once the schema is whole)."""
        from thalo.esdl.validator import CompiledSchema

        compiled = CompiledSchema(schema)
        for decl in schema.events.values():
            for item in decl.fields:
                if item.default is None:
                    continue
                problems = compiled.check_value(item.type, item.default_value)
                for path, message in problems or ():
                    self.error(
                        f"default of {decl.name}.{item.name} ({item.type}): "
                        f"{'$' + path + ': ' if path else ''}{message}",
                        item.default_span or item.span,
                    )

    def check_version(self, versions: Sequence[tuple[str, Span]]) -> str | None:
        if not versions:
            if self.complete:
                self.error('missing version: add a line like version = "0.1.0"', Span(1, 1))
            return None
        for _, span in versions[1:]:
            self.error("more than one version statement", span)
        value, span = versions[0]
        if not _SEMVER.match(value):
            self.error(f"invalid version {value!r}: expected a semantic version like 1.2.3", span)
            return None
        return value

    def check_aggregate(
        self, aggregates: Sequence[tuple[str, Span, list[Command]]]
    ) -> tuple[str, Span, list[Command]] | None:
        if not aggregates:
            if self.complete:
                self.error("missing aggregate: add an 'aggregate Name { ... }' block", Span(1, 1))
            return None
        for name, span, _ in aggregates[1:]:
            first = aggregates[0]
            self.error(
                f"more than one aggregate: {name!r} (a schema describes one aggregate, "
                f"{first[0]!r} at line {first[1].line})",
                span,
            )
        name, span, _ = aggregates[0]
        self.check_name("aggregate", name, span, frozenset())
        return aggregates[0]

    def check_declarations(
        self,
        events: Sequence[Declaration],
        types: Sequence[Declaration],
        aggregate: tuple[str, Span, list[Command]] | None,
    ) -> None:
        """Names of events and types share one namespace (each becomes a class)."""
        seen: dict[str, tuple[str, Declaration]] = {}
        applies: dict[str, str] = {}
        reserved = _RESERVED_DECLARATIONS | ({f"{aggregate[0]}Base"} if aggregate else set())
        for kind, decl in sorted(
            [*(("event", d) for d in events), *(("type", d) for d in types)],
            key=lambda pair: (pair[1].span.line, pair[1].span.column) if pair[1].span else (0, 0),
        ):
            self.check_name(kind, decl.name, decl.span, reserved)
            if decl.name in seen:
                other_kind, other = seen[decl.name]
                where = f" at line {other.span.line}" if other.span else ""
                self.error(
                    f"duplicate name {decl.name!r}: already declared as {other_kind}{where}",
                    decl.span,
                )
                continue
            seen[decl.name] = (kind, decl)
            if kind == "event":
                apply = snake_case(decl.name)
                if apply in applies:
                    self.error(
                        f"events {applies[apply]!r} and {decl.name!r} would both be applied "
                        f"by apply_{apply}",
                        decl.span,
                    )
                applies[apply] = decl.name

    def check_name(self, kind: str, name: str, span: Span | None, reserved: frozenset[str]) -> None:
        """CamelCase for the aggregate, events and types; snake_case for the rest."""
        camel = kind in ("aggregate", "event", "type")
        if not (_CAMEL if camel else _SNAKE).match(name):
            case, example = _CASES[kind]
            self.error(f"{kind} name {name!r} must be {case} (like {example})", span)
        elif name in reserved:
            self.error(f"{kind} name {name!r} is reserved", span)

    def check_fields(
        self,
        fields: Sequence[Field],
        kind: str,
        reserved: frozenset[str],
        events: dict[str, Declaration],
        types: dict[str, Declaration],
    ) -> None:
        seen: dict[str, Span | None] = {}
        for item in fields:
            self.check_name(kind, item.name, item.span, reserved)
            self.check_unique(kind, item.name, item.span, seen)
            self.check_type(item.type, events, types)

    def check_unique(
        self, kind: str, name: str, span: Span | None, seen: dict[str, Span | None]
    ) -> bool:
        """Report ``name`` if already in ``seen``; otherwise remember where it stands."""
        if name not in seen:
            seen[name] = span
            return True
        first = seen[name]
        at = f" at line {first.line}" if first else ""
        self.error(f"duplicate {kind} {name!r} (first declared{at})", span)
        return False

    def check_type(
        self, ref: TypeRef, events: dict[str, Declaration], types: dict[str, Declaration]
    ) -> None:
        depth = _depth(ref)
        if depth > MAX_ARRAY_DEPTH:
            self.error(f"arrays nested {depth} deep (at most {MAX_ARRAY_DEPTH})", ref.span)
            return
        ref = _innermost(ref)
        name = ref.name
        if name is None or name in SCALARS or name in types:
            return
        if name in events:
            self.error(
                f"{name!r} is an event, not a type: fields may use scalars and 'type' declarations",
                ref.span,
            )
        elif self.complete:
            scalars = ", ".join(SCALARS)
            self.error(f"unknown type {name!r} (scalars are {scalars})", ref.span)

    def check_commands(
        self,
        commands: Sequence[Command],
        events: dict[str, Declaration],
        types: dict[str, Declaration],
    ) -> list[Command]:
        unique: dict[str, Command] = {}
        seen: dict[str, Span | None] = {}
        for command in commands:
            self.check_name("command", command.name, command.span, frozenset())
            if self.check_unique("command", command.name, command.span, seen):
                unique[command.name] = command
            self.check_fields(command.params, "parameter", _RESERVED_PARAMS, events, types)
            refs: set[str] = set()
            for ref in command.events:
                if ref.name in refs:
                    self.error(f"event {ref.name!r} listed twice", ref.span)
                refs.add(ref.name)
                if ref.name in types and ref.name not in events:
                    self.error(f"{ref.name!r} is a type, not an event", ref.span)
                elif ref.name not in events and self.complete:
                    self.error(
                        f"event {ref.name!r} is not declared (add 'event {ref.name} {{ ... }}')",
                        ref.span,
                    )
        return list(unique.values())

    def check_recursion(self, types: Sequence[Declaration]) -> None:
        """A type may not contain itself, directly or through other types."""
        by_name = _first_by_name(types)

        def refs(decl: Declaration) -> Iterable[tuple[str, TypeRef]]:
            for item in decl.fields:
                ref = _innermost(item.type)
                if ref.name in by_name:
                    yield ref.name, ref

        reported: set[frozenset[str]] = set()
        state: dict[str, int] = {}  # 1 = on the path, 2 = done

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            path.append(name)
            for target, ref in refs(by_name[name]):
                if state.get(target) == 1:
                    cycle = path[path.index(target) :]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        chain = " -> ".join([*cycle, target])
                        self.error(f"recursive type: {chain}", ref.span)
                elif target not in state:
                    visit(target, path)
            path.pop()
            state[name] = 2

        for decl in types:
            if decl.name not in state:
                visit(decl.name, [])

    def check_unused(
        self,
        commands: Sequence[Command],
        events: Sequence[Declaration],
        types: Sequence[Declaration],
    ) -> None:
        produced = {ref.name for command in commands for ref in command.events}
        for decl in events:
            if decl.name not in produced:
                self.warn(f"event {decl.name!r} is declared but no command produces it", decl.span)
        used: set[str] = set()
        for fields in [*(d.fields for d in events), *(c.params for c in commands)]:
            used.update(_custom_names(fields))
        todo = [d for d in types if d.name in used]
        by_name = _first_by_name(types)
        while todo:
            for name in _custom_names(todo.pop().fields):
                if name not in used and name in by_name:
                    used.add(name)
                    todo.append(by_name[name])
        for decl in types:
            if decl.name not in used:
                self.warn(f"type {decl.name!r} is declared but never used", decl.span)


def _first_by_name(decls: Iterable[Declaration]) -> dict[str, Declaration]:
    """Declarations by name; a duplicate (already reported) does not replace the first."""
    by_name: dict[str, Declaration] = {}
    for decl in decls:
        by_name.setdefault(decl.name, decl)
    return by_name


def _depth(ref: TypeRef) -> int:
    depth = 0
    while ref.item is not None:
        ref, depth = ref.item, depth + 1
    return depth


def _innermost(ref: TypeRef) -> TypeRef:
    """The named type at the bottom of an array type (the type itself if not an array)."""
    while ref.item is not None:
        ref = ref.item
    return ref


def _custom_names(fields: Iterable[Field]) -> set[str]:
    names = set()
    for item in fields:
        ref = _innermost(item.type)
        if ref.name is not None and ref.name not in SCALARS:
            names.add(ref.name)
    return names


def check(parsed: Parsed, reporter: Reporter, complete: bool = True) -> Schema:
    """Check what was parsed; raise SchemaError with every error (source order), or
    return the schema with its warnings. ``complete`` is false after syntax errors."""
    schema = _Checker(reporter, complete).check(parsed)
    errors = reporter.errors()
    if errors or schema is None:
        raise schema_error(errors)
    return dataclasses.replace(schema, warnings=reporter.warnings())


def check_schema(schema: Schema) -> Schema:
    """Run the checks on a schema built in code rather than parsed."""
    parsed = Parsed(
        versions=[(schema.version, Span(0, 0))],
        aggregates=[(schema.name, Span(0, 0), list(schema.commands.values()))],
        events=list(schema.events.values()),
        types=list(schema.types.values()),
    )
    checked = check(parsed, Reporter("", schema.filename))
    return dataclasses.replace(checked, filename=schema.filename)
