"""ESDL printing: canonical text of a model, and source reformatting that keeps comments.

``print_schema`` is what ``Schema.to_esdl`` returns (embedded in generated code and
compared by the registry); ``format_source`` is ``thalo esdl fmt``: same layout, the
declarations in source order, and every comment kept next to what it preceded.
"""

from __future__ import annotations

__all__ = ["format_source", "print_schema"]

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from thalo.esdl.diagnostics import schema_error
from thalo.esdl.model import Command, Declaration, Field, Schema, Span

INDENT = "  "
MAX_WIDTH = 100


def _field(item: Field) -> str:
    default = f" = {item.default}" if item.default is not None else ""
    return f"{item.name}: {item.type}{default}"


def _event_header(decl: Declaration) -> str:
    return f"event {decl.name}" + (f" version {decl.version}" if decl.version != 1 else "")


def command_lines(command: Command) -> list[str]:
    """A command on one line, or one parameter a line when it would pass MAX_WIDTH."""
    refs = [ref.name + ("?" if ref.optional else "") for ref in command.events]
    events = f"({' | '.join(refs)})" if command.event_set else refs[0]
    params = [_field(p) for p in command.params]
    line = f"{INDENT}{command.name}({', '.join(params)}) -> {events}"
    if len(line) <= MAX_WIDTH or not params:
        return [line]
    return [
        f"{INDENT}{command.name}(",
        *(f"{INDENT * 2}{p}," for p in params),
        f"{INDENT}) -> {events}",
    ]


def _block(header: str, body: Sequence[str]) -> list[str]:
    return [f"{header} {{", *body, "}"] if body else [f"{header} {{}}"]


def print_schema(schema: Schema) -> str:
    """The canonical ESDL text: version, aggregate, events, then types."""
    parts = [
        [f'version = "{schema.version}"'],
        _block(
            f"aggregate {schema.name}",
            [line for c in schema.commands.values() for line in command_lines(c)],
        ),
        *(_declaration("event", d) for d in schema.events.values()),
        *(_declaration("type", d) for d in schema.types.values()),
    ]
    return "\n\n".join("\n".join(part) for part in parts) + "\n"


def _header(kind: str, decl: Declaration) -> str:
    return _event_header(decl) if kind == "event" else f"{kind} {decl.name}"


def _declaration(kind: str, decl: Declaration) -> list[str]:
    return _block(_header(kind, decl), [INDENT + _field(f) for f in decl.fields])


# --- reformatting source --------------------------------------------------------

_COMMENT = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.DOTALL)


@dataclass
class _Comment:
    line: int
    column: int
    text: str
    used: bool = False


def _comments(text: str) -> list[_Comment]:
    found = []
    for match in _COMMENT.finditer(text):
        if match.group().startswith('"'):
            continue  # a string, skipped so that '//' inside it is no comment
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        line = text.count("\n", 0, start) + 1
        found.append(_Comment(line, start - line_start + 1, match.group()))
    return found


class _Writer:
    """Emits lines, placing each comment before the first item that follows it."""

    def __init__(self, source: str, comments: list[_Comment], starts: set[tuple[int, int]]) -> None:
        self.source_lines = source.splitlines()
        self.comments = comments
        self.starts = starts  # (line, column) of every item, to place trailing comments
        self.lines: list[str] = []

    def blank_line_before(self, line: int, after: int) -> None:
        """Keep one blank line before a member (or its own-line comments) if the source
        had one there, below source line ``after`` (where the block or last member is)."""
        pending = [c.line for c in self.comments if not c.used and c.line < line]
        first = min([*pending, line])
        if first - 1 > after and not self.source_lines[first - 2].strip():
            self.lines.append("")

    def comments_before(self, line: int, indent: str) -> None:
        for comment in self.comments:
            if not comment.used and comment.line < line:
                comment.used = True
                first, *rest = comment.text.split("\n")
                self.lines.append(indent + first)
                self.lines.extend(rest)

    def item(self, at: tuple[int, int], indent: str, texts: Iterable[str]) -> None:
        """Write an item that starts at source ``at`` (line, column); a comment later on
        that line trails it, unless another item stands between them."""
        line, column = at
        self.comments_before(line, indent)
        first_line = len(self.lines) - 1 if not texts else len(self.lines)
        self.lines.extend(texts)
        trailing = [
            c
            for c in self.comments
            if not c.used
            and c.line == line
            and c.column > column
            and not any(row == line and column < k < c.column for row, k in self.starts)
        ]
        for comment in trailing:
            # On the item's first line: that is where it starts when formatted again.
            comment.used = True
            first, *rest = comment.text.split("\n")
            self.lines[first_line] += "  " + first
            self.lines[first_line + 1 : first_line + 1] = rest

    def block(
        self, header: tuple[Span, str], members: list[tuple[Span, list[str]]], end: int
    ) -> None:
        span, text = header
        line = span.line
        inside = any(line < c.line < end for c in self.comments if not c.used)
        if not members and not inside:
            self.item((line, span.column), "", [text + " {}"])
            if end != line:
                self.item((end, 0), "", [])  # comments trailing a '}' on its own line
            return
        self.item((line, span.column), "", [text + " {"])
        previous: int | None = None  # no blank line right after the '{'
        for member, texts in members:
            if previous is not None:
                self.blank_line_before(member.line, previous)
            self.item((member.line, member.column), INDENT, texts)
            previous = member.line
        self.comments_before(end, INDENT)
        self.item((end, 0), "", ["}"])


def format_source(text: str, filename: str = "<esdl>") -> str:
    """Reformat ESDL source; raises SchemaError on syntax errors (nothing is lost).

    Only syntax must be valid: a file with semantic errors can still be formatted.
    """
    from thalo.esdl.parser import parse_declarations

    parsed, reporter, complete = parse_declarations(text, filename)
    if not complete:
        raise schema_error(reporter.errors())
    spans: list[Span | None] = [span for _, span in parsed.versions]
    spans += [a[1] for a in parsed.aggregates]
    for decl in [*parsed.events, *parsed.types]:
        spans += [decl.span, *(f.span for f in decl.fields)]
    for _, _, commands in parsed.aggregates:
        spans += [c.span for c in commands]
    writer = _Writer(text, _comments(text), {(s.line, s.column) for s in spans if s is not None})
    nowhere = Span(0, 0)

    def version(value: str, span: Span) -> Callable[[], None]:
        return lambda: writer.item((span.line, span.column), "", [f'version = "{value}"'])

    def aggregate(name: str, span: Span, commands: list[Command]) -> Callable[[], None]:
        members = [(c.span or nowhere, command_lines(c)) for c in commands]
        return lambda: writer.block((span, f"aggregate {name}"), members, parsed.end_of(span))

    def declaration(kind: str, decl: Declaration) -> Callable[[], None]:
        members = [(f.span or nowhere, [INDENT + _field(f)]) for f in decl.fields]
        header = (decl.span or nowhere, _header(kind, decl))
        return lambda: writer.block(header, members, parsed.end_of(decl.span))

    items: list[tuple[int, int, Callable[[], None]]] = [
        *((span.line, span.column, version(value, span)) for value, span in parsed.versions),
        *((a[1].line, a[1].column, aggregate(*a)) for a in parsed.aggregates),
        *((d.span.line if d.span else 0, 0, declaration("event", d)) for d in parsed.events),
        *((d.span.line if d.span else 0, 0, declaration("type", d)) for d in parsed.types),
    ]
    items.sort(key=lambda item: (item[0], item[1]))
    for index, (_, _, emit) in enumerate(items):
        if index:
            writer.lines.append("")
        emit()
    writer.comments_before(len(text.splitlines()) + 2, "")
    return "\n".join(writer.lines).rstrip("\n") + "\n"
