"""The ``thalo`` command: one click group; each area adds its commands from its own module.

Subcommand modules import heavy dependencies (wasmtime, psycopg) inside the
command functions, so ``thalo --help`` stays fast.
"""

from __future__ import annotations

__all__ = ["cli", "main"]

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from thalo.errors import ThaloError

DEFAULT_STORE_DIR = ".thalo"

# name -> (module, attribute): loaded only when that command runs or help lists it.
_COMMANDS: dict[str, tuple[str, str]] = {
    "store": ("thalo.cli.store", "store"),
    "esdl": ("thalo.cli.esdl", "esdl"),
    "codegen": ("thalo.cli.esdl", "codegen"),
    "build": ("thalo.cli.build", "build"),
    "new": ("thalo.cli.build", "new"),
    "cache": ("thalo.cli.cache", "cache"),
    "publish": ("thalo.cli.registry", "publish"),
    "modules": ("thalo.cli.registry", "modules"),
    "execute": ("thalo.cli.commands", "execute"),
    "state": ("thalo.cli.commands", "state"),
    "run": ("thalo.cli.commands", "run"),
    "serve": ("thalo.cli.serve", "serve"),
    "projection": ("thalo.cli.projection", "projection"),
    "relay": ("thalo.cli.relay", "relay"),
    "stream": ("thalo.cli.streams", "stream"),
    "category": ("thalo.cli.streams", "category"),
}


def default_store_url() -> str:
    """The embedded default: an SQLite file under ``./.thalo/``."""
    return f"sqlite:///{Path(DEFAULT_STORE_DIR, 'thalo.db').as_posix()}"


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in _COMMANDS:
            return None if found is None else _accept_global_options(found)
        module_name, attr = _COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None  # that area has not landed yet
        command = getattr(module, attr, None)
        return _accept_global_options(command) if isinstance(command, click.Command) else None


def _set_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        settings = ctx.find_root().obj
        if isinstance(settings, Settings):
            settings.store_override = value


def _accept_global_options(command: click.Command) -> click.Command:
    """Let ``--store`` follow the subcommand too: ``thalo execute --store URL …``.

    Added once to every leaf command that does not have a ``--store`` of its own
    (``thalo serve`` has one, which already overrides the global option).
    """
    if getattr(command, "_thalo_global_options", False):
        return command
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_global_options(sub)
    elif not any("--store" in param.opts for param in command.params):
        command.params.append(
            click.Option(
                ["--store", "_global_store"],
                metavar="URL",
                default=None,
                expose_value=False,
                callback=_set_store,
                help="Message store URL (the global --store; may also follow the command).",
            )
        )
    command._thalo_global_options = True  # type: ignore[attr-defined]
    return command


class Settings:
    """What the global options resolved to; commands read it from ``ctx.obj``."""

    def __init__(self, store_url: str | None) -> None:
        self.store_override = store_url

    @property
    def store_url(self) -> str:
        """``--store`` (before or after the subcommand), else ``THALO_STORE``, else the default."""
        return self.store_override or os.environ.get("THALO_STORE") or default_store_url()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    help="Message store URL: sqlite:///file.db or postgresql://… "
    "[env THALO_STORE; default sqlite:///.thalo/thalo.db]",
)
@click.version_option(package_name="thalo")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None) -> None:
    """thalo: event-sourced aggregates as WebAssembly components."""
    ctx.obj = Settings(store_url)


def _wants_json(args: list[str]) -> bool:
    """Whether ``--json`` is among the options (before a ``--`` that ends them)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def main(argv: list[str] | None = None) -> Any:
    """Entry point: runs the CLI and turns ThaloError into its documented exit code.

    With ``--json`` an error is ``{"error": {"code", "message", "exit_code"}}`` on
    stdout (the exit code is the same), so a script reads one JSON document either way.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = _wants_json(args)
    try:
        return cli.main(args=args, prog_name="thalo", standalone_mode=False)
    except ThaloError as exc:
        from thalo.cli.output import print_error, print_error_json

        if as_json:
            print_error_json(exc.code, exc.message, exc.exit_code)
        else:
            print_error(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        if as_json:
            from thalo.cli.output import print_error_json

            print_error_json("Aborted", "aborted", 130)
        else:
            click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        code = 2 if exc.exit_code == 1 or isinstance(exc, click.UsageError) else exc.exit_code
        if as_json:
            from thalo.cli.output import print_error_json

            print_error_json("UsageError", exc.format_message(), code)
        else:
            exc.show()
        sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
