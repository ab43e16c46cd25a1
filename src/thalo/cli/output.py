"""Printing for the CLI: Rich tables for people, JSON for ``--json``, errors to stderr.

Everything the CLI prints that it did not write itself — event data, ids,
stream names, types, rejection reasons, error messages — is untrusted: a guest
or a caller chose it. Such text goes through :func:`clean` (control characters
shown as escapes, long texts cut with a marker) and reaches Rich only as
:class:`rich.text.Text` or escaped markup, so it is never interpreted. Printing
a result is guarded (:func:`guarded`): a failure while printing is reported on
stderr and never turns a command that succeeded into a failure.
"""

from __future__ import annotations

__all__ = [
    "CELL_LIMIT",
    "ERROR_LIMIT",
    "clean",
    "console",
    "err_console",
    "escape",
    "guarded",
    "print_error",
    "print_error_json",
    "print_json",
    "show",
    "stdout_closed",
    "text",
]

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape as _escape_markup
from rich.text import Text

from thalo.errors import ThaloError

_closed = False


def _silence_stdout() -> None:
    """Point stdout at /dev/null: its reader went away (``| head``), so stop writing."""
    global _closed
    _closed = True
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def stdout_closed() -> bool:
    """Whether stdout's reader went away: a ``--follow`` stops then."""
    return _closed


class _Console(Console):
    """A Rich console whose broken pipe does not exit 1 (Rich's default): see ``guarded``."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _silence_stdout()


# Emoji codes off: ":b:" in an id must print as ":b:", not as an emoji.
console = _Console(highlight=False, emoji=False)
err_console = _Console(stderr=True, highlight=False, emoji=False)

CELL_LIMIT = 4_000
"""At most this many characters of one value in a table cell or line (a 15 MB event
would otherwise take a minute and hundreds of MB to lay out)."""

ERROR_LIMIT = 10_000
"""At most this many characters of an error message, on stderr or in ``--json``."""

# C0 and C1 controls (but newline and tab), DEL, and the bidirectional overrides that
# reorder what a terminal shows ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object, limit: int = CELL_LIMIT) -> str:
    """``value`` as text safe for a terminal: controls escaped, cut to ``limit`` characters.

    A cut text ends with ``… (N more characters)``, so nobody mistakes it for
    the whole value.
    """
    source = value if isinstance(value, str) else str(value)
    extra = len(source) - limit
    shown = _CONTROL.sub(_visible, source[:limit] if extra > 0 else source)
    return f"{shown}… ({extra:,} more characters)" if extra > 0 else shown


def text(value: object, limit: int = CELL_LIMIT, style: str = "") -> Text:
    """Untrusted ``value`` as a Rich ``Text``: never parsed as markup, cleaned, bounded."""
    return Text(clean(value, limit), style=style)


def escape(value: object, limit: int = CELL_LIMIT) -> str:
    """Untrusted ``value`` cleaned and escaped, to embed in a markup string."""
    return _escape_markup(clean(value, limit))


@contextmanager
def guarded() -> Iterator[None]:
    """Printing a result: a failure here is a warning on stderr, not the command's failure.

    By the time a command prints, its work is done (events stored, module
    published); a closed pipe or a rendering bug must not report otherwise.
    """
    try:
        yield
    except BrokenPipeError:
        # The reader went away: nothing more to say, and nowhere to say it (the
        # interpreter's flush at exit then writes to /dev/null, quietly).
        _silence_stdout()
    except Exception as exc:
        # stderr itself may be gone too: then the exit code is all that is left, and it stands.
        with suppress(Exception):
            err_console.print(
                text(
                    "warning: the command succeeded, but printing its result failed: "
                    f"{type(exc).__name__}: {exc}",
                    ERROR_LIMIT,
                    style="yellow",
                ),
                soft_wrap=True,
            )


def show(*renderables: Any, **options: Any) -> None:
    """``console.print`` for a command's result, guarded (see :func:`guarded`)."""
    with guarded():
        console.print(*renderables, **options)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (orjson: datetimes become ISO 8601)."""
    with guarded():
        sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
        sys.stdout.flush()


def print_error(exc: ThaloError) -> None:
    """Print an error for a person: its class name and its message (cleaned, bounded)."""
    err_console.print(f"[bold red]error[/] ({type(exc).__name__}): ", end="")
    # soft_wrap: never re-wrap messages (ESDL diagnostics align carets under columns).
    err_console.print(text(exc.message, ERROR_LIMIT), soft_wrap=True)


def print_error_json(code: str, message: str, exit_code: int) -> None:
    """With ``--json``: ``{"error": {"code", "message", "exit_code"}}`` on stdout.

    The message is bounded like on stderr; JSON itself escapes control characters.
    """
    error = {"code": code, "message": clean(message, ERROR_LIMIT), "exit_code": exit_code}
    print_json({"error": error})
