"""``thalo publish`` and ``thalo modules``: the registry of aggregate modules.

With ``--url`` both go through a ``thalo serve`` (publishing builds locally and
uploads, with the admin token); the output is the same either way.
"""

from __future__ import annotations

__all__ = ["modules", "publish"]

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from thalo.cli.output import err_console, escape, print_json, show, text
from thalo.cli.session import connect, run_with_store, server_options
from thalo.errors import UsageError

if TYPE_CHECKING:
    from thalo.registry import ModuleRecord
    from thalo.store import MessageStore


def _inputs(paths: tuple[Path, ...]) -> tuple[str, bytes, str]:
    """(schema text, component bytes, schema file name) from a project or two files."""
    from thalo.errors import BuildError

    if len(paths) == 1 and paths[0].is_dir():
        from thalo.cli.build import build_project, project_schema

        result = build_project(paths[0])
        schema_path = project_schema(paths[0])
        return schema_path.read_text("utf-8"), result.path.read_bytes(), str(schema_path)
    if len(paths) == 2:
        by_suffix = {p.suffix: p for p in paths}
        esdl, wasm = by_suffix.get(".esdl"), by_suffix.get(".wasm")
        if esdl is None or wasm is None:
            raise UsageError("give SCHEMA.esdl and MODULE.wasm, or one project directory")
        try:
            return esdl.read_text("utf-8"), wasm.read_bytes(), str(esdl)
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"cannot read {esdl} / {wasm}: {exc}") from exc
    raise UsageError("give one project directory, or SCHEMA.esdl and MODULE.wasm")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the published record as JSON.")
@server_options
def publish(paths: tuple[Path, ...], as_json: bool, url: str | None, token: str | None) -> None:
    """Publish an aggregate: a project directory (built first) or SCHEMA.esdl MODULE.wasm.

    The module's version comes from its ESDL and must be greater than every
    published version of that aggregate. With --url the server publishes it
    (give its admin token with --token).
    """
    schema_text, wasm, filename = _inputs(paths)

    async def go(store: MessageStore) -> ModuleRecord:
        from thalo.registry import Registry

        return await Registry(store).publish(schema_text, wasm, filename=filename)

    with err_console.status("publishing (first compile of a component takes a few seconds)…"):
        if url:
            with connect(url, token) as client:
                published = client.publish(schema_text, wasm)
        else:
            published = run_with_store(go).to_dict()
    if as_json:
        print_json(published)
        return
    show(
        f"published [bold]{escape(published['name'])} {escape(published['version'])}[/] "
        f"({published['size'] / 1e6:.1f} MB, sha256 {escape(published['sha256'][:12])}…): "
        f"commands {escape(', '.join(published['commands']))}"
    )


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_options
def modules(name: str | None, as_json: bool, url: str | None, token: str | None) -> None:
    """List published modules (every version, or those of NAME)."""

    async def go(store: MessageStore) -> list[ModuleRecord]:
        from thalo.registry import Registry

        return await Registry(store).modules(name)

    records: list[dict[str, Any]]
    if url:
        with connect(url, token) as client:
            records = client.modules(name)
    else:
        records = [r.to_dict() for r in run_with_store(go, read_only=True)]
    if as_json:
        print_json(records)
        return
    if not records:
        show("no modules published" + (f" for {escape(name)}" if name else ""))
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("aggregate", "version", "commands", "size", "sha256", "published"):
        table.add_column(column)
    for r in records:
        table.add_row(
            text(r["name"]),
            text(r["version"]),
            text(", ".join(r["commands"])),
            f"{r['size'] / 1e6:.1f} MB",
            text(r["sha256"][:12]),
            datetime.fromisoformat(r["published_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        )
    show(table)
