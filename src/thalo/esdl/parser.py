"""ESDL source -> ``Schema``: lark parses (grammar.lark), a Transformer builds the model,
then ``checker`` collects every semantic problem.

Syntax errors stop only the declaration they are in: when the whole file does not
parse, it is split at top-level keywords and each declaration is parsed alone, so
one run reports the syntax errors of several declarations together.
"""

from __future__ import annotations

__all__ = ["parse", "parse_declarations", "parse_file"]

import dataclasses
import functools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from thalo.errors import SchemaError
from thalo.esdl.checker import Parsed, check
from thalo.esdl.diagnostics import Reporter, schema_error
from thalo.esdl.model import (
    Command,
    Declaration,
    EventRef,
    Field,
    Schema,
    Span,
    TypeRef,
    canonical_json,
)


@functools.cache
def _lark() -> Any:
    from lark import Lark

    grammar = resources.files("thalo.esdl").joinpath("grammar.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=True)


# --- parse tree -> model -------------------------------------------------------


def _span(token: Any) -> Span:
    return Span(token.line, token.column, max(1, len(token)))


def _transformer() -> Any:
    from lark import Token, Transformer

    class ToModel(Transformer[Any, Any]):
        """Turns lark's tree into model values; ``start`` fills a ``Parsed``."""

        def __init__(self, parsed: Parsed) -> None:
            super().__init__()
            self.parsed = parsed

        def start(self, items: list[Any]) -> Parsed:
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

        def field(self, items: list[Any]) -> Field:
            name, type_ref, equals, value = items
            if equals is None:
                return Field(str(name), type_ref, _span(name))
            span = value.span or _span(equals)
            if value.error is not None:
                self.parsed.bad_defaults.append((value.error, span))
                return Field(str(name), type_ref, _span(name))
            default = canonical_json(value.value)
            return Field(str(name), type_ref, _span(name), default, span)

        # Default values: JSON, each with where it starts.
        def string_value(self, items: list[Any]) -> _Value:
            (token,) = items
            try:
                return _Value(json.loads(str(token)), _span(token))
            except ValueError as exc:
                return _Value(None, _span(token), f"invalid string {token!s}: {exc.args[0]}")

        def number_value(self, items: list[Any]) -> _Value:
            (token,) = items
            value = json.loads(str(token))
            if isinstance(value, float) and not math.isfinite(value):
                return _Value(None, _span(token), f"number {token} is out of range")
            return _Value(value, _span(token))

        def true_value(self, items: list[Any]) -> _Value:
            return _Value(True, _span(items[0]))

        def false_value(self, items: list[Any]) -> _Value:
            return _Value(False, _span(items[0]))

        def null_value(self, items: list[Any]) -> _Value:
            return _Value(None, _span(items[0]))

        def array_value(self, items: list[Any]) -> _Value:
            lsqb, *values = items
            values = [v for v in values if v is not None]
            error = next((v.error for v in values if v.error is not None), None)
            return _Value([v.value for v in values], _span(lsqb), error)

        def object_value(self, items: list[Any]) -> _Value:
            lbrace, *members, _rbrace = items
            members = [m for m in members if m is not None]
            error = next((v.error for _, v in members if v.error is not None), None)
            value: dict[str, Any] = {}
            for key, member in members:
                value[key] = member.value
            return _Value(value, _span(lbrace), error)

        def member(self, items: list[Any]) -> tuple[str, _Value]:
            key, value = items
            try:
                return str(json.loads(str(key))), value
            except ValueError as exc:
                return "", _Value(None, _span(key), f"invalid string {key!s}: {exc.args[0]}")

        def schema_version(self, items: list[Any]) -> tuple[str, Span]:
            (token,) = items
            return str(token), _span(token)

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
            name, version, *rest = items
            decl = self._declaration([name, *rest])
            if version is not None:
                text, span = version
                decl = dataclasses.replace(decl, version=_whole(text), version_span=span)
            self.parsed.events.append(decl)

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


@dataclass(frozen=True, slots=True)
class _Value:
    """A default value as parsed: the JSON value, where it starts, what is wrong with it."""

    value: Any
    span: Span | None = None
    error: str | None = None


def _whole(text: str) -> int:
    """An event version as written; 0 (refused by the checker) unless a whole number."""
    return int(text) if text.isdigit() else 0


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
_COMMENTS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.DOTALL)


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


class _Source(Reporter):
    """The text being parsed, reporting syntax errors at their positions."""

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


def parse_declarations(text: str, filename: str = "<esdl>") -> tuple[Parsed, Reporter, bool]:
    """Parse the whole text; on syntax errors, parse declaration by declaration.

    Returns what parsed (unchecked), the reporter holding the syntax errors, and
    whether the parse is complete (no syntax error anywhere).
    """
    source = _Source(text, filename)
    parsed, complete = _parse(source)
    return parsed, source, complete


def _parse(source: _Source) -> tuple[Parsed, bool]:
    from lark.exceptions import UnexpectedInput

    parser = _lark()
    to_model = _transformer()
    parsed = Parsed()
    try:
        tree = parser.parse(source.text)
    except UnexpectedInput:
        pass
    else:
        to_model(parsed).transform(tree)
        return parsed, True

    parsed = Parsed()
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


# --- entry points -----------------------------------------------------------------


def parse(text: str, filename: str = "<esdl>") -> Schema:
    """Compile ESDL source into a Schema.

    Raises SchemaError carrying every error found (``exc.diagnostics``); warnings
    (events never produced, types never used) are on ``schema.warnings``.
    """
    source = _Source(text, filename)
    try:
        parsed, complete = _parse(source)
    except RecursionError:  # the tree transformer recurses once per nesting level
        source.diagnostics.clear()
        source.report("types are nested too deeply", Span(1, 1))
        raise schema_error(source.errors()) from None
    return check(parsed, source, complete)


def parse_file(path: str | PathLike[str]) -> Schema:
    """Read and compile an ESDL file (UTF-8, a BOM allowed); unreadable files raise
    SchemaError too."""
    file = Path(path)
    try:
        text = file.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"cannot read ESDL file {str(file)!r}: {exc}") from exc
    return parse(text, str(path))
