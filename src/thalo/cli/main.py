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
    "publish": ("thalo.cli.registry", "publish"),
    "modules": ("thalo.cli.registry", "modules"),
    "execute": ("thalo.cli.commands", "execute"),
    "state": ("thalo.cli.commands", "state"),
    "run": ("thalo.cli.commands", "run"),
    "serve": ("thalo.cli.serve", "serve"),
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
            return found
        module_name, attr = _COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None  # that area has not landed yet
        command = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None


class Settings:
    """What the global options resolved to; commands read it from ``ctx.obj``."""

    def __init__(self, store_url: str | None) -> None:
        self._store_url = store_url

    @property
    def store_url(self) -> str:
        return self._store_url or os.environ.get("THALO_STORE") or default_store_url()


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


def main(argv: list[str] | None = None) -> Any:
    """Entry point: runs the CLI and turns ThaloError into its documented exit code."""
    try:
        return cli.main(args=argv, prog_name="thalo", standalone_mode=False)
    except ThaloError as exc:
        from thalo.cli.output import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 1 or isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
