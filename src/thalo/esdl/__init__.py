"""thalo.esdl: the Event-sourcing Schema Definition Language.

``parse`` compiles ESDL text into a frozen ``Schema`` (raising ``SchemaError`` with
every diagnostic); the schema validates payloads, yields JSON Schemas, prints
canonical ESDL, and feeds the Python and TypeScript code generators. lark is
imported only when something is parsed.
"""

from __future__ import annotations

from thalo.esdl.diagnostics import Diagnostic as Diagnostic
from thalo.esdl.diagnostics import Severity as Severity
from thalo.esdl.diff import SchemaDiff as SchemaDiff
from thalo.esdl.diff import diff_schemas as diff_schemas
from thalo.esdl.model import SCALARS as SCALARS
from thalo.esdl.model import Command as Command
from thalo.esdl.model import Declaration as Declaration
from thalo.esdl.model import EventRef as EventRef
from thalo.esdl.model import Field as Field
from thalo.esdl.model import Schema as Schema
from thalo.esdl.model import Span as Span
from thalo.esdl.model import TypeRef as TypeRef
from thalo.esdl.parser import parse as parse
from thalo.esdl.parser import parse_file as parse_file

__all__ = [
    "SCALARS",
    "Command",
    "Declaration",
    "Diagnostic",
    "EventRef",
    "Field",
    "Schema",
    "SchemaDiff",
    "Severity",
    "Span",
    "TypeRef",
    "diff_schemas",
    "format_esdl",
    "generate_python",
    "generate_typescript",
    "parse",
    "parse_file",
]


def generate_python(schema: Schema, *, source_name: str | None = None) -> str:
    """The typed Python guest module for ``schema`` (see docs/esdl.md)."""
    from thalo.esdl.codegen.python import generate_python as generate

    return generate(schema, source_name=source_name)


def generate_typescript(schema: Schema, *, source_name: str | None = None) -> str:
    """TypeScript interfaces and the aggregate interface for ``schema``."""
    from thalo.esdl.codegen.typescript import generate_typescript as generate

    return generate(schema, source_name=source_name)


def format_esdl(text: str, filename: str = "<esdl>") -> str:
    """Reformat ESDL source canonically, keeping its comments; raises SchemaError."""
    from thalo.esdl.printer import format_source

    return format_source(text, filename)
