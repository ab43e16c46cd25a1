"""ESDL source -> ``Schema``: lark parses (grammar.lark), a Transformer builds the model,
then one checking pass collects every semantic problem.

Syntax errors stop only the declaration they are in: when the whole file does not
parse, it is split at top-level keywords and each declaration is parsed alone, so
one run reports the syntax errors of several declarations together.
"""

from __future__ import annotations

__all__ = ["check_schema", "parse", "parse_file"]

import dataclasses
import functools
import keyword
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from thalo.errors import SchemaError
from thalo.esdl.diagnostics import Diagnostic, Severity, schema_error
from thalo.esdl.model import (
    SCALARS,
    Command,
    Declaration,
    EventRef,
    Field,
    Schema,
    Span,
    TypeRef,
)


@functools.cache
def _lark() -> Any:
    from lark import Lark

    grammar = resources.files("thalo.esdl").joinpath("grammar.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=True)


# --- parse tree -> model -------------------------------------------------------


def _span(token: Any) -> Span:
    return Span(token.line, token.column, max(1, len(token)))


@dataclass
class _Parsed:
    """What the source declares, in order, before any checking (duplicates included)."""

    versions: list[tuple[str, Span]] = field(default_factory=list)
    aggregates: list[tuple[str, Span, list[Command]]] = field(default_factory=list)
    events: list[Declaration] = field(default_factory=list)
    types: list[Declaration] = field(default_factory=list)
    # (line, column) of a block's name -> line of its closing brace (for the formatter).
    block_ends: dict[tuple[int, int], int] = field(default_factory=dict)

    def end_of(self, span: Span | None) -> int:
        return self.block_ends.get((span.line, span.column), 0) if span else 0


def _transformer() -> Any:
    from lark import Token, Transformer

    class ToModel(Transformer[Any, Any]):
        """Turns lark's tree into model values; ``start`` fills a ``_Parsed``."""

        def __init__(self, parsed: _Parsed) -> None:
            super().__init__()
            self.parsed = parsed

        def start(self, items: list[Any]) -> _Parsed:
            return self.parsed

        def version(self, items: list[Any]) -> None:
            (string,) = items
            self.parsed.versions.append((str(string)[1:-1], _span(string)))

        def aggregate(self, items: list[Any]) -> None:
            name, *commands, rbrace = items
            self.parsed.aggregates.append((str(name), _span(name), commands))
            self.parsed.block_ends[(name.line, name.column)] = rbrace.line

        def command(self, items: list[Any]) -> Command:
            name, *params, _arrow, events = items
            params = [p for p in params if p is not None]
            if isinstance(events, EventRef):
                return Command(str(name), tuple(params), (events,), False, _span(name))
            return Command(str(name), tuple(params), tuple(events), True, _span(name))

        def param(self, items: list[Any]) -> Field:
            name, type_ref = items
            return Field(str(name), type_ref, _span(name))

        field = param

        def event_set(self, items: list[Any]) -> list[EventRef]:
            return [item for item in items if isinstance(item, EventRef)]

        def event_ref(self, items: list[Any]) -> EventRef:
            name, qmark = items
            return EventRef(str(name), qmark is not None, _span(name))

        def _declaration(self, items: list[Any]) -> Declaration:
            name, *fields, rbrace = items
            fields = [f for f in fields if isinstance(f, Field)]
            self.parsed.block_ends[(name.line, name.column)] = rbrace.line
            return Declaration(str(name), tuple(fields), _span(name))

        def event(self, items: list[Any]) -> None:
            self.parsed.events.append(self._declaration(items))

        def typedef(self, items: list[Any]) -> None:
            self.parsed.types.append(self._declaration(items))

        def named_type(self, items: list[Any]) -> TypeRef:
            name, qmark = items
            return TypeRef(str(name), None, qmark is not None, _span(name))

        def array_type(self, items: list[Any]) -> TypeRef:
            lsqb, item, qmark = items
            assert isinstance(lsqb, Token)
            return TypeRef(None, item, qmark is not None, _span(lsqb))

    return ToModel


# --- syntax errors ---------------------------------------------------------------

_TERMINAL_NAMES = {
    "NAME": "a name",
    "STRING": 'a quoted string ("0.1.0")',
    "$END": "end of file",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()


def _expected(names: Iterable[str]) -> str:
    described = sorted({_describe_terminal(n) for n in names if not n.startswith("__")})
    if not described:
        return ""
    if len(described) == 1:
        return f", expected {described[0]}"
    return f", expected one of: {', '.join(described)}"


# Top-level declarations start a line; inside blocks no line can start this way.
_DECLARATION_START = re.compile(
    r"^[ \t]*(?:version[ \t]*=|(?:aggregate|event|type)[ \t]+[A-Za-z_])", re.MULTILINE
)
_COMMENTS = re.compile(r'//[^\n]*|/\*.*?\*/|"[^"\n]*"', re.DOTALL)


def _chunks(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the top-level declarations, found outside comments."""
    hidden = [(m.start(), m.end()) for m in _COMMENTS.finditer(text)]
    starts = [0]
    for match in _DECLARATION_START.finditer(text):
        offset = match.start()
        if offset and not any(a <= offset < b for a, b in hidden):
            starts.append(offset)
    ends = [*starts[1:], len(text)]
    return list(zip(starts, ends, strict=True))


class _Source:
    """The text being parsed, its name, and a way to make positioned diagnostics."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.lines = text.splitlines()
        self.diagnostics: list[Diagnostic] = []

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def report(self, message: str, span: Span | None, severity: Severity = Severity.ERROR) -> None:
        line, column, length = (span.line, span.column, span.length) if span else (0, 0, 1)
        self.diagnostics.append(
            Diagnostic(severity, message, self.filename, line, column, length, self.line_text(line))
        )

    def position(self, offset: int) -> Span:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return Span(line, column)

    def first_token(self, offset: int) -> Span:
        """Where the first non-blank, non-comment text at or after ``offset`` stands."""
        match = re.compile(r"(?:\s|//[^\n]*|/\*.*?\*/)*", re.DOTALL).match(self.text, offset)
        start = match.end() if match else offset
        word = re.compile(r"\w+|\S").match(self.text, start)
        span = self.position(start)
        return Span(span.line, span.column, len(word.group()) if word else 1)

    def syntax_error(self, exc: Exception, chunk_end: int, is_last: bool) -> None:
        from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

        if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
            token = exc.token
            text = str(token)
            what = f"'{text}'" if token.type not in ("NAME", "STRING") else f"{text!r}"
            self.report(f"unexpected {what}{_expected(_accepts(exc))}", _span(token))
        elif isinstance(exc, UnexpectedToken | UnexpectedEOF):
            # The declaration ended early: point at what follows it (or the end of file).
            expected = _expected(_accepts(exc))
            if is_last:
                end = self.position(len(self.text.rstrip()))
                self.report(f"unexpected end of file{expected}", end)
            else:
                span = self.first_token(chunk_end)
                word = self.text[chunk_end:].lstrip().split(None, 1)[0]
                self.report(f"unexpected '{word}'{expected}", span)
        elif isinstance(exc, UnexpectedCharacters):
            char = exc.char
            if char == '"':
                message = "unterminated string: a string must close on the same line"
            elif self.line_text(exc.line).startswith("/*", exc.column - 1):
                message = "unterminated comment: '/*' needs a closing '*/'"
            else:
                message = f"unexpected character {char!r}{_expected(_accepts(exc) or exc.allowed)}"
            self.report(message, Span(exc.line, exc.column))
        else:  # pragma: no cover - lark raises only the kinds above for LALR
            self.report(f"syntax error: {exc}", Span(1, 1))


def _accepts(exc: Any) -> set[str]:
    """The tokens the parser would really take here (LALR's ``expected`` over-approximates)."""
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is not None:
        try:
            accepted: set[str] = interactive.accepts()
        except Exception:  # lark's simulation failing only costs the better hint
            accepted = set()
        if accepted:
            return accepted
    return set(getattr(exc, "expected", ()) or ())


def _parse_text(source: _Source) -> tuple[_Parsed, bool]:
    """Parse the whole text; on syntax errors, parse declaration by declaration.

    Returns what parsed and whether it is complete (no syntax error anywhere).
    """
    from lark.exceptions import UnexpectedInput

    parser = _lark()
    to_model = _transformer()
    parsed = _Parsed()
    try:
        tree = parser.parse(source.text)
    except UnexpectedInput:
        pass
    else:
        to_model(parsed).transform(tree)
        return parsed, True

    parsed = _Parsed()
    chunks = _chunks(source.text)
    for index, (start, end) in enumerate(chunks):
        # Pad with the newlines before the chunk so that lark's lines are the file's lines.
        padded = "\n" * source.text.count("\n", 0, start) + source.text[start:end]
        try:
            tree = parser.parse(padded)
        except UnexpectedInput as exc:
            source.syntax_error(exc, end, index == len(chunks) - 1)
            continue
        to_model(parsed).transform(tree)
    return parsed, False


# --- semantic checks ----------------------------------------------------------------

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")

# Names the generated code needs for itself (see codegen/python.py).
_BUILTINS = ("str", "int", "float", "bool", "bytes", "list", "dict")
_RESERVED_FIELDS = frozenset({*keyword.kwlist, *_BUILTINS, "to_json", "from_json"})
_RESERVED_PARAMS = frozenset({*keyword.kwlist, "self", "ctx"})
_PYTHON_NAMES = ("Aggregate", "CommandSpec", "Context", "Any", "ClassVar", "SCHEMA")
_RESERVED_DECLARATIONS = frozenset({*SCALARS, *_PYTHON_NAMES, "None", "True", "False"})


def snake_case(name: str) -> str:
    """``OpenedAccount`` -> ``opened_account``; ``HTTPRequest`` -> ``http_request``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class _Checker:
    """One pass over the parsed declarations that reports every semantic problem."""

    def __init__(self, source: _Source, complete: bool) -> None:
        self.source = source
        # After a syntax error some declarations are missing: skip the checks that
        # would only report their absence.
        self.complete = complete

    def error(self, message: str, span: Span | None) -> None:
        self.source.report(message, span)

    def warn(self, message: str, span: Span | None) -> None:
        self.source.report(message, span, Severity.WARNING)

    def check(self, parsed: _Parsed) -> Schema | None:
        version = self.check_version(parsed.versions)
        aggregate = self.check_aggregate(parsed.aggregates)
        declared = self.check_declarations(parsed.events, parsed.types, aggregate)
        events = _first_by_name(parsed.events)
        types = _first_by_name(parsed.types)
        for decl in [*parsed.events, *parsed.types]:
            self.check_fields(decl.fields, "field", _RESERVED_FIELDS, events, types, declared)
        commands = self.check_commands(aggregate[2] if aggregate else [], events, types, declared)
        self.check_recursion(parsed.types)
        if self.complete:
            self.check_unused(commands, parsed.events, parsed.types)
        if version is None or aggregate is None:
            return None
        return Schema.build(
            aggregate[0],
            version,
            commands,
            list(events.values()),
            list(types.values()),
            filename=self.source.filename,
            span=aggregate[1],
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
        if not _CAMEL.match(name):
            self.error(f"aggregate name {name!r} must be CamelCase (like BankAccount)", span)
        return aggregates[0]

    def check_declarations(
        self,
        events: Sequence[Declaration],
        types: Sequence[Declaration],
        aggregate: tuple[str, Span, list[Command]] | None,
    ) -> dict[str, Declaration]:
        """Names of events and types share one namespace (each becomes a class)."""
        seen: dict[str, tuple[str, Declaration]] = {}
        applies: dict[str, str] = {}
        reserved = _RESERVED_DECLARATIONS | ({f"{aggregate[0]}Base"} if aggregate else set())
        for kind, decl in sorted(
            [*(("event", d) for d in events), *(("type", d) for d in types)],
            key=lambda pair: (pair[1].span.line, pair[1].span.column) if pair[1].span else (0, 0),
        ):
            if not _CAMEL.match(decl.name):
                self.error(
                    f"{kind} name {decl.name!r} must be CamelCase (like OpenedAccount)", decl.span
                )
            elif decl.name in reserved:
                self.error(f"{kind} name {decl.name!r} is reserved", decl.span)
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
        return {name: decl for name, (_, decl) in seen.items()}

    def check_fields(
        self,
        fields: Sequence[Field],
        kind: str,
        reserved: frozenset[str],
        events: dict[str, Declaration],
        types: dict[str, Declaration],
        declared: dict[str, Declaration],
    ) -> None:
        seen: dict[str, Field] = {}
        for item in fields:
            if not _SNAKE.match(item.name):
                self.error(
                    f"{kind} name {item.name!r} must be snake_case (like amount_due)", item.span
                )
            elif item.name in reserved:
                self.error(f"{kind} name {item.name!r} is reserved", item.span)
            if item.name in seen:
                where = seen[item.name].span
                at = f" at line {where.line}" if where else ""
                self.error(f"duplicate {kind} {item.name!r} (first declared{at})", item.span)
            else:
                seen[item.name] = item
            self.check_type(item.type, events, types)

    def check_type(
        self, ref: TypeRef, events: dict[str, Declaration], types: dict[str, Declaration]
    ) -> None:
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
        declared: dict[str, Declaration],
    ) -> list[Command]:
        unique: dict[str, Command] = {}
        for command in commands:
            if not _SNAKE.match(command.name):
                self.error(
                    f"command name {command.name!r} must be snake_case (like deposit_funds)",
                    command.span,
                )
            if command.name in unique:
                first = unique[command.name].span
                at = f" at line {first.line}" if first else ""
                self.error(f"duplicate command {command.name!r} (first declared{at})", command.span)
            else:
                unique[command.name] = command
            self.check_fields(
                command.params, "parameter", _RESERVED_PARAMS, events, types, declared
            )
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


# --- entry points -----------------------------------------------------------------


def parse(text: str, filename: str = "<esdl>") -> Schema:
    """Compile ESDL source into a Schema.

    Raises SchemaError carrying every error found (``exc.diagnostics``); warnings
    (events never produced, types never used) are on ``schema.warnings``.
    """
    source = _Source(text, filename)
    try:
        parsed, complete = _parse_text(source)
        schema = _Checker(source, complete).check(parsed)
    except RecursionError:
        source.diagnostics.clear()
        source.report("types are nested too deeply", Span(1, 1))
        schema = None
    source.diagnostics.sort(key=lambda d: (d.line, d.column))
    errors = [d for d in source.diagnostics if d.severity is Severity.ERROR]
    if errors or schema is None:
        raise schema_error(errors)
    warnings = tuple(d for d in source.diagnostics if d.severity is Severity.WARNING)
    return dataclasses.replace(schema, warnings=warnings)


def parse_file(path: str | PathLike[str]) -> Schema:
    """Read and compile an ESDL file; unreadable files raise SchemaError too."""
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"cannot read ESDL file {str(file)!r}: {exc}") from exc
    return parse(text, str(path))


def check_schema(schema: Schema) -> Schema:
    """Run the semantic checks on a schema built without source (e.g. from JSON)."""
    source = _Source("", schema.filename)
    parsed = _Parsed(
        versions=[(schema.version, Span(0, 0))],
        aggregates=[(schema.name, Span(0, 0), list(schema.commands.values()))],
        events=list(schema.events.values()),
        types=list(schema.types.values()),
    )
    checked = _Checker(source, True).check(parsed)
    errors = [d for d in source.diagnostics if d.severity is Severity.ERROR]
    if errors or checked is None:
        raise schema_error(errors)
    warnings = tuple(d for d in source.diagnostics if d.severity is Severity.WARNING)
    return dataclasses.replace(checked, filename=schema.filename, warnings=warnings)
