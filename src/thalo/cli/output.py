"""Printing for the CLI: Rich tables for people, JSON for ``--json``, errors to stderr."""

from __future__ import annotations

__all__ = ["console", "err_console", "print_error", "print_json"]

import sys
from typing import Any

import orjson
from rich.console import Console

from thalo.errors import ThaloError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (orjson: datetimes become ISO 8601)."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def print_error(exc: ThaloError) -> None:
    """Print an error for a person: its class name and its message, on stderr."""
    err_console.print(f"[bold red]error[/] ({type(exc).__name__}): ", end="")
    # soft_wrap: never re-wrap messages (ESDL diagnostics align carets under columns).
    err_console.print(exc.message, markup=False, highlight=False, soft_wrap=True)
