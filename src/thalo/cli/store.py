"""``thalo store …``: create and inspect the message store."""

from __future__ import annotations

__all__ = ["store"]

import asyncio
from pathlib import Path
from typing import Any

import click

from thalo.cli.output import escape, print_json, show, text


@click.group()
def store() -> None:
    """The message store: embedded SQLite or Message DB on PostgreSQL."""


async def _init(url: str, message_db: Path | None) -> dict[str, Any]:
    from thalo.store import open_store, redact_url

    result: dict[str, Any] = {"store": redact_url(url), "steps": []}
    if url.partition(":")[0].lower() in ("postgresql", "postgres"):
        from thalo.store.installer import install_message_db

        report = await install_message_db(url, message_db)
        result["message_db_version"] = report.version
        result["already_installed"] = report.already_installed
        if report.already_installed:
            result["steps"].append(f"Message DB {report.version} is already installed")
        else:
            result["steps"].append(
                f"installed Message DB {report.version} from {report.database_dir}"
            )
            result["steps"] += report.steps
    async with open_store(url) as opened:
        result["steps"] += await opened.init()
    return result


@store.command("init")
@click.argument("url", required=False)
@click.option(
    "--message-db",
    "message_db",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Path to the @eventide/message-db package (default: found in node_modules "
    "above the current directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def init(ctx: click.Context, url: str | None, message_db: Path | None, as_json: bool) -> None:
    """Create the message store at URL (default: the global --store).

    PostgreSQL: installs Message DB from the official package's SQL scripts,
    then thalo's own schema. SQLite: creates the file and its schema. Running
    it again changes nothing and says so.
    """
    target = url or ctx.obj.store_url
    result = asyncio.run(_init(target, message_db))
    if as_json:
        print_json(result)
        return
    show(f"[bold]{escape(result['store'])}[/]")
    for step in result["steps"]:
        show(text(f"  • {step}"))
