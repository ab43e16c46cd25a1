"""``thalo projection``: run projections and read models, show their positions, rebuild, replay.

``run FILE.py:OBJECT`` (or ``module:object``) loads a ``Projection`` or
``ReadModel`` (or a list of them) and runs it until SIGTERM/SIGINT, which
stop it cleanly with its positions recorded. The projection's catalog entry
remembers the target, so ``rebuild NAME`` and ``replay-parked NAME`` can load
it again without being told where it is.
"""

from __future__ import annotations

__all__ = ["load_target", "projection"]

import asyncio
import importlib
import importlib.util
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from thalo.cli.output import console, err_console, print_json, show, text
from thalo.cli.session import run_with_store
from thalo.errors import UsageError

if TYPE_CHECKING:
    from thalo.consumer import Projection, ProjectionRunner, ReadModel
    from thalo.store import MessageStore


def load_target(target: str) -> tuple[str, list[Projection | ReadModel]]:
    """Import ``FILE.py:OBJECT`` or ``module:object``; return (canonical target, projections).

    A file's directory goes on ``sys.path`` first, so it may import its neighbours.
    """
    from thalo.consumer import Projection, ReadModel

    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise UsageError(f"{target!r}: give FILE.py:OBJECT or module:object")
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.is_file():
            raise UsageError(f"{target!r}: no file {where}")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"{target!r}: cannot load {where}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        canonical = f"{path}:{attr}"
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise UsageError(f"{target!r}: cannot import {where}: {exc}") from exc
        canonical = target
    found: Any = getattr(module, attr, None)
    items = list(found) if isinstance(found, list | tuple) else [found]
    if not items or not all(isinstance(i, Projection | ReadModel) for i in items):
        raise UsageError(f"{target!r}: {attr} is not a Projection or ReadModel (or a list of them)")
    names = [i.name for i in items]
    if len(set(names)) != len(names):
        raise UsageError(f"{target!r}: two projections are named alike")
    return canonical, items


def _group(group_member: int | None, group_size: int | None) -> None:
    if (group_member is None) != (group_size is None):
        raise UsageError("give --group-member and --group-size together")
    if group_size is not None and group_member is not None and not 0 <= group_member < group_size:
        raise UsageError(f"--group-member must be in 0..{group_size - 1}")


@click.group()
def projection() -> None:
    """Run projections and read models; show their positions; rebuild; replay parked messages."""


async def _progress_line(runners: list[ProjectionRunner], stop: asyncio.Event) -> None:
    """Every second: position, lag and events/s per projection (in place on a terminal)."""
    from thalo.consumer import category_lag

    tty = err_console.is_terminal
    last_print = 0.0
    before = {id(r): (time.monotonic(), 0) for r in runners}
    while not stop.is_set():
        await asyncio.sleep(1.0)
        parts = []
        for r in runners:
            handled = sum(p.handled for p in r.progress.values())
            t0, h0 = before[id(r)]
            now = time.monotonic()
            rate = (handled - h0) / max(now - t0, 1e-9)
            before[id(r)] = (now, handled)
            for cat, p in r.progress.items():
                try:
                    lag = await category_lag(r.store, cat, p.position)
                except Exception:  # a store outage: the readers report it
                    lag = -1
                parked = f" parked {p.parked}" if p.parked else ""
                parts.append(
                    f"{r.projection.name} {cat}: position {p.position or 0} lag {lag} "
                    f"{rate:,.0f} ev/s{parked}"
                )
        line = " | ".join(parts)
        if tty:
            err_console.file.write(
                "\r" + line[: err_console.width - 1].ljust(err_console.width - 1)
            )
            err_console.file.flush()
        elif time.monotonic() - last_print >= 5.0:
            last_print = time.monotonic()
            err_console.file.write(line + "\n")
            err_console.file.flush()


@projection.command("run")
@click.argument("target")
@click.option("--group-member", type=int, help="This process's member number in its group.")
@click.option("--group-size", type=int, help="How many processes share the categories.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def run(target: str, group_member: int | None, group_size: int | None, quiet: bool) -> None:
    """Run the projections of TARGET (FILE.py:OBJECT or module:object) until stopped.

    Ctrl-C or SIGTERM stops cleanly: the message in hand finishes and every
    position is recorded.
    """
    _group(group_member, group_size)
    canonical, items = load_target(target)
    _logging()

    async def go(store: MessageStore) -> None:
        import signal

        from thalo.consumer import ProjectionRunner, StoreWatcher

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = StoreWatcher(store)
        runners = [
            ProjectionRunner(
                store,
                item,
                group_member=group_member,
                group_size=group_size,
                watcher=watcher,
                target=canonical,
            )
            for item in items
        ]
        group = "" if group_size is None else f" as member {group_member} of {group_size}"
        names = ", ".join(r.projection.name for r in runners)
        err_console.print(f"thalo projection: running {names}{group}; Ctrl-C stops", style="dim")
        progress = None if quiet else asyncio.create_task(_progress_line(runners, stop))
        try:
            await asyncio.gather(*(r.run(stop) for r in runners))
        finally:
            stop.set()
            if progress is not None:
                progress.cancel()
            await watcher.close()
        for r in runners:
            for cat, p in r.progress.items():
                console.print(
                    f"stopped {r.projection.name} on {cat} at position {p.position or 0}: "
                    f"{p.handled} handled, {p.parked} parked",
                    style="dim",
                )

    run_with_store(go)


@projection.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """List every projection that ran against the store: position and lag per category."""

    async def go(store: MessageStore) -> list[dict[str, Any]]:
        from thalo.consumer import category_lag, list_projections
        from thalo.consumer.positions import read_store_table_position, read_stream_position
        from thalo.core import stream_name

        rows: list[dict[str, Any]] = []
        for entry in await list_projections(store):
            members: list[int | None] = (
                [None] if entry.group_size is None else list(range(entry.group_size))
            )
            for cat in entry.categories:
                for m in members:
                    ident = entry.name if m is None else f"{entry.name}+{m}of{entry.group_size}"
                    stream = stream_name(cat, ident, "position")
                    position = await read_stream_position(store, stream)
                    if entry.table_in_store:
                        in_table = await read_store_table_position(store, stream)
                        if in_table is not None:
                            position = max(position or 0, in_table)
                    parked = await store.stream_version(stream_name(cat, entry.name, "parked"))
                    rows.append(
                        {
                            "name": entry.name,
                            "kind": entry.kind,
                            "category": cat,
                            "group_member": m,
                            "group_size": entry.group_size,
                            "position": position,
                            "lag": await category_lag(store, cat, position),
                            "parked": 0 if parked is None else parked + 1,
                            "target": entry.target,
                            "updated_at": entry.updated_at,
                        }
                    )
        return rows

    rows = run_with_store(go, read_only=True)
    if as_json:
        print_json(rows)
        return
    if not rows:
        show(text("no projection has run against this store"))
        return
    from rich.table import Table

    table = Table("name", "kind", "category", "member", "position", "lag", "parked")
    for r in rows:
        member = "" if r["group_member"] is None else f"{r['group_member']}/{r['group_size']}"
        table.add_row(
            text(r["name"]),
            r["kind"],
            text(r["category"]),
            member,
            str(r["position"] or 0),
            str(r["lag"]),
            str(r["parked"]),
        )
    console.print(table)


def _find(store_target: str | None, name: str, target: str | None) -> Projection | ReadModel:
    where = target or store_target
    if where is None:
        raise UsageError(f"projection {name!r} is unknown here: give --target FILE.py:OBJECT")
    _, items = load_target(where)
    for item in items:
        if item.name == name:
            return item
    raise UsageError(f"{where} has no projection named {name!r}")


async def _catalog_target(store: MessageStore, name: str) -> str | None:
    from thalo.consumer import list_projections

    for entry in await list_projections(store):
        if entry.name == name:
            return entry.target
    return None


@projection.command("rebuild")
@click.argument("name")
@click.option("--target", help="FILE.py:OBJECT to load (default: where it last ran from).")
def rebuild(name: str, target: str | None) -> None:
    """Reset a projection (its reset hook, its positions) and replay its categories.

    Stop its `thalo projection run` processes first; start them again afterwards.
    """
    _logging()

    async def go(store: MessageStore) -> int:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        from thalo.consumer import ProjectionRunner, category_lag

        item = _find(await _catalog_target(store, name), name, target)
        total = sum([await category_lag(store, cat, None) for cat in item.categories])
        runner = ProjectionRunner(store, item)
        columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeRemainingColumn(), console=err_console) as bar:
            task = bar.add_task(f"rebuilding {name}", total=total)
            return await runner.rebuild(lambda n: bar.advance(task, n))

    handled = run_with_store(go, read_only=True)
    console.print(f"rebuilt {name}: {handled} messages replayed")


@projection.command("replay-parked")
@click.argument("name")
@click.option("--target", help="FILE.py:OBJECT to load (default: where it last ran from).")
def replay_parked(name: str, target: str | None) -> None:
    """Deliver the parked messages of projection NAME again, in order, each once."""
    _logging()

    async def go(store: MessageStore) -> int:
        from thalo.consumer import ProjectionFailed, ProjectionRunner

        item = _find(await _catalog_target(store, name), name, target)
        try:
            return await ProjectionRunner(store, item).replay_parked()
        except ProjectionFailed as exc:
            err_console.print(f"replay stopped: {exc}", style="red", markup=False)
            raise click.exceptions.Exit(1) from exc

    count = run_with_store(go, read_only=True)
    console.print(f"replayed {count} parked messages of {name}")


def _logging() -> None:
    import logging

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("thalo.projection").setLevel(logging.INFO)
