"""``thalo publish`` and ``thalo modules``: the registry of aggregate modules.

With ``--url`` both go through a ``thalo serve`` (publishing builds locally and
uploads, with the admin token); the output is the same either way.
"""

from __future__ import annotations

__all__ = ["modules", "publish"]

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from thalo.cli.output import err_console, escape, print_json, show, text
from thalo.cli.session import connect, run_with_store, server_options
from thalo.errors import UsageError

if TYPE_CHECKING:
    from thalo.esdl import Schema
    from thalo.registry import ModuleRecord
    from thalo.store import MessageStore


@dataclass(frozen=True, slots=True)
class _Upload:
    """What ``thalo publish`` was given, read but not built yet."""

    schema_text: str
    filename: str
    schema: Schema
    project: Path | None  # a project directory to build, or None for a prebuilt component
    wasm: bytes | None
    source_digest: str | None


def _read(paths: tuple[Path, ...]) -> _Upload:
    """The schema (parsed) and what identifies the module, without building anything."""
    from thalo.errors import BuildError
    from thalo.esdl import parse

    if len(paths) == 1 and paths[0].is_dir():
        from thalo.cli.build import read_project
        from thalo.wasm.build import source_digest
        from thalo.wasm.build_js import JsProject, js_source_digest

        project, schema_text, schema = read_project(paths[0])
        if isinstance(project, JsProject):
            digest = js_source_digest(project, schema.to_esdl())
        else:
            digest = source_digest(project, schema.to_esdl())
        return _Upload(schema_text, str(project.schema), schema, paths[0], None, digest)
    if len(paths) == 2:
        by_suffix = {p.suffix: p for p in paths}
        esdl, wasm = by_suffix.get(".esdl"), by_suffix.get(".wasm")
        if esdl is None or wasm is None:
            raise UsageError("give SCHEMA.esdl and MODULE.wasm, or one project directory")
        try:
            schema_text, data = esdl.read_text("utf-8"), wasm.read_bytes()
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"cannot read {esdl} / {wasm}: {exc}") from exc
        return _Upload(schema_text, str(esdl), parse(schema_text, str(esdl)), None, data, None)
    raise UsageError("give one project directory, or SCHEMA.esdl and MODULE.wasm")


def _precheck(upload: _Upload, url: str | None, token: str | None) -> dict[str, Any] | None:
    """The published record when publishing is a no-op; raises when it would be refused.

    Runs before the build, so a refused publish costs milliseconds.
    """
    sha256 = None if upload.wasm is None else hashlib.sha256(upload.wasm).hexdigest()
    if url:
        from thalo.registry import check_version

        with connect(url, token) as client:
            records = client.modules(upload.schema.name)
        same = check_version(
            upload.schema.name,
            upload.schema.version,
            [(r["version"], r["sha256"], r.get("source_digest")) for r in records],
            sha256=sha256,
            source_digest=upload.source_digest,
        )
        return next((r for r in records if r["version"] == same), None)

    async def go(store: MessageStore) -> ModuleRecord | None:
        from thalo.registry import Registry

        return await Registry(store).precheck(
            upload.schema, sha256=sha256, source_digest=upload.source_digest
        )

    existing = run_with_store(go)
    return None if existing is None else existing.to_dict()


def _compatibility(
    upload: _Upload, allow_breaking: bool, url: str | None, token: str | None
) -> list[str]:
    """The compatibility check before any build (registry/compatibility.py), here or on the
    server: raises ``IncompatibleSchema`` when refused; the diff to show after publishing."""
    schema = upload.schema
    if url:
        with connect(url, token) as client:
            outcome = client.compatibility(upload.schema_text, allow_breaking=allow_breaking)
        rendered = outcome.get("rendered")
        return [rendered] if isinstance(rendered, str) else []

    async def check(store: MessageStore) -> list[str]:
        from thalo.registry import Registry

        outcome = await Registry(store).compatibility(schema)
        outcome.require(allow_breaking=allow_breaking)
        return [] if outcome.rendered is None else [outcome.rendered]

    return run_with_store(check)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the published record as JSON.")
@click.option(
    "--allow-breaking",
    is_flag=True,
    help="Publish even if stored events would not read under the new schema.",
)
@server_options
def publish(
    paths: tuple[Path, ...], as_json: bool, allow_breaking: bool, url: str | None, token: str | None
) -> None:
    """Publish an aggregate: a project directory (built first) or SCHEMA.esdl MODULE.wasm.

    The module's version comes from its ESDL and must be greater than every
    published version of that aggregate; it is checked before the build.
    Publishing the same source (or bytes) under a published version again is
    a no-op; other source under it is refused (exit 2). A version whose events
    would not read the stored ones is refused with the field-level diff (exit 2)
    unless it declares upcasting or --allow-breaking is given. With --url the
    server publishes it (give its admin token with --token).
    """
    upload = _read(paths)
    existing = _precheck(upload, url, token)
    if existing is not None:
        if as_json:
            print_json(existing)
        else:
            show(
                f"{escape(existing['name'])} {escape(existing['version'])} is already "
                f"published from this source (sha256 {escape(existing['sha256'][:12])}…): "
                "nothing to do"
            )
        return
    changes = _compatibility(upload, allow_breaking, url, token)
    wasm = upload.wasm
    if upload.project is not None:
        from thalo.cli.build import build_project

        wasm = build_project(upload.project).path.read_bytes()
    assert wasm is not None
    schema_text, digest = upload.schema_text, upload.source_digest

    async def go(store: MessageStore) -> ModuleRecord:
        from thalo.registry import Registry

        return await Registry(store).publish(
            schema_text,
            wasm,
            filename=upload.filename,
            source_digest=digest,
            allow_breaking=allow_breaking,
        )

    with err_console.status("publishing (first compile of a component takes a few seconds)…"):
        if url:
            with connect(url, token) as client:
                published = client.publish(schema_text, wasm, digest, allow_breaking=allow_breaking)
        else:
            published = run_with_store(go).to_dict()
    for lines in changes:
        err_console.print(text(lines))
    if as_json:
        print_json(published)
        return
    show(
        f"published [bold]{escape(published['name'])} {escape(published['version'])}[/] "
        f"({published['size'] / 1e6:.1f} MB, sha256 {escape(published['sha256'][:12])}…): "
        f"commands {escape(', '.join(published['commands']))}"
    )


class _ModulesGroup(click.Group):
    """``thalo modules [NAME]`` lists (the ``list`` subcommand); ``retire`` and ``gc`` manage."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if first not in self.commands and first not in ("-h", "--help"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ModulesGroup)
def modules() -> None:
    """Published modules: list them (the default), retire a version, collect garbage.

    `thalo modules [NAME]` is `thalo modules list [NAME]`.
    """


@modules.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_options
def list_modules(name: str | None, as_json: bool, url: str | None, token: str | None) -> None:
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
            text(r["version"] + (" (retired)" if r.get("retired_at") else "")),
            text(", ".join(r["commands"])),
            f"{r['size'] / 1e6:.1f} MB",
            text(r["sha256"][:12]),
            datetime.fromisoformat(r["published_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        )
    show(table)


@modules.command()
@click.argument("name")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Print the retired record as JSON.")
@server_options
def retire(name: str, version: str, as_json: bool, url: str | None, token: str | None) -> None:
    """Stop new commands on NAME VERSION; it stays loadable to replay its history.

    New commands run on the newest version that is not retired; with none left,
    they fail with ModuleRetired (exit 2). With --url the server retires it (give
    its admin token with --token); its own next command already sees it.
    """

    async def go(store: MessageStore) -> ModuleRecord:
        from thalo.registry import Registry

        return await Registry(store).retire(name, version)

    record: dict[str, Any]
    if url:
        with connect(url, token) as client:
            record = client.retire(name, version)
    else:
        record = run_with_store(go, read_only=True).to_dict()
    if as_json:
        print_json(record)
        return
    show(
        f"retired {escape(record['name'])} {escape(record['version'])}: it serves no new "
        "commands and stays loadable for history"
    )


@modules.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@server_options
def gc(as_json: bool, url: str | None, token: str | None) -> None:
    """Remove component bytes that no published version references.

    With --url the server collects (give its admin token with --token).
    """

    async def go(store: MessageStore) -> dict[str, int]:
        from thalo.registry import Registry

        return await Registry(store).collect_garbage()

    if url:
        with connect(url, token) as client:
            figures = client.gc()
    else:
        figures = run_with_store(go, read_only=True)
    if as_json:
        print_json(figures)
        return
    show(
        f"removed {figures['removed']} unreferenced component(s), "
        f"{figures['freed_bytes'] / 1e6:.1f} MB; the registry keeps {figures['blobs']} "
        f"component(s) of {figures['raw_bytes'] / 1e6:.1f} MB in "
        f"{figures['stored_bytes'] / 1e6:.1f} MB"
    )
