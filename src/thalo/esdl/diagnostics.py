"""Compiler-style diagnostics for ESDL: file:line:column, the source line, a caret.

Every problem the parser and checker find is collected as a ``Diagnostic``; errors
are raised together in one ``SchemaError``, warnings travel on the schema.
"""

from __future__ import annotations

__all__ = ["Diagnostic", "Reporter", "Severity", "render_all", "schema_error"]

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thalo.errors import SchemaError, SourceLocation
from thalo.esdl.model import Span


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem at one place; ``source_line`` is the text of that line (no newline)."""

    severity: Severity
    message: str
    file: str
    line: int
    column: int
    length: int = 1
    source_line: str = ""

    @property
    def location(self) -> SourceLocation:
        return SourceLocation(self.file, self.line, self.column)

    def render(self) -> str:
        """``file:line:col: error: message`` then the line and a caret under the culprit."""
        if self.line <= 0:  # no source (a schema rebuilt from JSON)
            return f"{self.file}: {self.severity.value}: {self.message}"
        head = f"{self.file}:{self.line}:{self.column}: {self.severity.value}: {self.message}"
        if not self.source_line:
            return head
        number = str(self.line)
        gutter = " " * len(number)
        # Tabs keep their width in the caret line so the caret lines up.
        prefix = "".join(c if c == "\t" else " " for c in self.source_line[: self.column - 1])
        available = max(1, len(self.source_line) - self.column + 1)
        caret = "^" * max(1, min(self.length, available))
        return f"{head}\n {number} | {self.source_line}\n {gutter} | {prefix}{caret}"

    def __str__(self) -> str:
        return self.render()

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
        }


def render_all(diagnostics: Sequence[Diagnostic]) -> str:
    """All diagnostics, blank-line separated, and a count of errors and warnings."""
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = len(diagnostics) - errors
    parts = [d.render() for d in diagnostics]
    counts = []
    if errors:
        counts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        counts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    parts.append(", ".join(counts) or "no problems")
    return "\n\n".join(parts)


def schema_error(diagnostics: Sequence[Diagnostic]) -> SchemaError:
    """One SchemaError carrying every error (warnings are left out of the message)."""
    errors = tuple(d for d in diagnostics if d.severity is Severity.ERROR)
    return SchemaError(render_all(errors), errors)


class Reporter:
    """Collects positioned diagnostics for one source text (which may be empty)."""

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

    def errors(self) -> list[Diagnostic]:
        """The errors so far, in source order."""
        self.diagnostics.sort(key=lambda d: (d.line, d.column))
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)
