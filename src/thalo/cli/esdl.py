"""``thalo esdl check|fmt`` and ``thalo codegen``: the schema language from the shell.

Bad schemas raise SchemaError; ``thalo.cli.main`` prints it and exits 2.
"""

from __future__ import annotations

__all__ = ["codegen", "esdl"]

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from thalo.errors import SchemaError

if TYPE_CHECKING:
    from thalo.esdl import Schema

_T = TypeVar("_T")


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"cannot read ESDL file {str(path)!r}: {exc}") from exc


def _compile(path: Path) -> Schema:
    """Parse a schema file; errors are printed as ``_diagnosed`` does."""
    from thalo.esdl import parse

    return _diagnosed(path, lambda: parse(_read(path), str(path)))


def _diagnosed(path: Path, work: Callable[[], _T]) -> _T:
    """Run ``work``; on a SchemaError print each diagnostic verbatim, then raise a summary.

    Diagnostics go through click, not Rich, so long lines are never re-wrapped and the
    carets stay under what they point at.
    """
    try:
        return work()
    except SchemaError as exc:
        if not exc.diagnostics:
            raise
        for diagnostic in exc.diagnostics:
            click.echo(f"{diagnostic}\n", err=True)
        count = len(exc.diagnostics)
        raise SchemaError(f"{path}: {count} error{'s' if count != 1 else ''}") from exc


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step, so an interrupted write never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        # mkstemp makes the file private; keep the mode of the file being replaced.
        os.chmod(temporary, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _print_warnings(warnings: tuple[object, ...]) -> None:
    for warning in warnings:
        click.echo(str(warning), err=True)


@click.group()
def esdl() -> None:
    """Check and format ESDL schemas."""


@esdl.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the schema model as JSON.")
def check(file: Path, as_json: bool) -> None:
    """Compile FILE: exit 0 with a summary, or exit 2 with every error.

    With --json, stdout is always one JSON document: the schema and its warnings, or
    (exit 2) ``{"errors": [...]}`` with each error's file, line, column and message.
    """
    if as_json:
        from thalo.cli.output import print_json
        from thalo.esdl import Diagnostic, parse

        try:
            schema = parse(_read(file), str(file))
        except SchemaError as exc:
            errors = [d.to_dict() for d in exc.diagnostics if isinstance(d, Diagnostic)]
            print_json({"errors": errors or [{"message": exc.message}]})
            # This document is the error report: `thalo.cli.main` must not print the
            # generic {"error": …} one after it (stdout stays one JSON document).
            sys.exit(exc.exit_code)
        print_json(
            {
                "schema": schema.to_json(),
                "warnings": [w.to_dict() for w in schema.warnings],
            }
        )
        return
    schema = _compile(file)
    _print_warnings(schema.warnings)
    count = len(schema.warnings)
    warned = f", {count} warning{'s' if count != 1 else ''}" if count else ""
    click.echo(
        f"{file}: ok — aggregate {schema.name} {schema.version}: "
        f"{len(schema.commands)} commands, {len(schema.events)} events, "
        f"{len(schema.types)} types{warned}"
    )


@esdl.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--check", "check_only", is_flag=True, help="Exit 1 if FILE is not formatted.")
@click.option("--write", is_flag=True, help="Rewrite FILE in place.")
def fmt(file: Path, check_only: bool, write: bool) -> None:
    """Print FILE canonically formatted (comments kept), or --check / --write it."""
    from thalo.esdl import format_esdl

    if check_only and write:
        raise click.UsageError("--check and --write exclude each other")
    text = _read(file)
    formatted = _diagnosed(file, lambda: format_esdl(text, str(file)))
    if check_only:
        if formatted != text:
            click.echo(f"would reformat {file}", err=True)
            sys.exit(1)
        click.echo(f"{file}: already formatted")
    elif write:
        if formatted != text:
            _write_atomically(file, formatted)
            click.echo(f"reformatted {file}")
        else:
            click.echo(f"{file}: already formatted")
    else:
        click.echo(formatted, nl=False)


@esdl.command()
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
def diff(old: Path, new: Path, as_json: bool) -> None:
    """Print what changed from OLD to NEW, field by field, and what breaks stored events.

    The diff `thalo publish` prints when it refuses a version. Exit 0, or 1 when a
    change is breaking and not upcast (a removed event type counts: without a
    store, nobody can tell whether one was stored).
    """
    from thalo.errors import UsageError
    from thalo.esdl.diff import diff_schemas

    before, after = _compile(old), _compile(new)
    if before.name != after.name:
        raise UsageError(f"{old} describes {before.name} and {new} {after.name}: not one aggregate")
    result = diff_schemas(before, after)
    if as_json:
        from thalo.cli.output import print_json

        print_json(result.to_dict())
    else:
        click.echo(result.render())
    if result.breaking:
        sys.exit(1)


@click.command()
@click.argument("schema_file", metavar="SCHEMA.esdl", type=click.Path(path_type=Path))
@click.option(
    "--lang",
    type=click.Choice(["python", "typescript"]),
    default="python",
    show_default=True,
    help="Target language of the generated module.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
def codegen(schema_file: Path, lang: str, output: Path | None) -> None:
    """Generate typed code (dataclasses or interfaces, and the aggregate base) from a schema."""
    from thalo.esdl import generate_python, generate_typescript

    schema = _compile(schema_file)
    _print_warnings(schema.warnings)
    if lang == "python":
        code = generate_python(schema, source_name=schema_file.name)
    else:
        code = generate_typescript(schema, source_name=schema_file.name)
    if output is None:
        click.echo(code, nl=False)
        return
    _write_atomically(output, code)
    click.echo(f"wrote {output} ({lang}, aggregate {schema.name} {schema.version})", err=True)
