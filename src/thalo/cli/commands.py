"""``thalo execute`` and ``thalo state``: run commands, and look at an entity at any point.

Both work on the local store or, with ``--url``, through a ``thalo serve``;
the output is the same either way.
"""

from __future__ import annotations

__all__ = ["execute", "run", "state"]

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import orjson

from thalo.cli.output import console, err_console, escape, guarded, print_json, show, text
from thalo.cli.session import connect, run_with_runtime, server_options
from thalo.cli.streams import print_messages
from thalo.errors import UsageError

if TYPE_CHECKING:
    from thalo.core import Message
    from thalo.runtime import EntityState, Runtime


def _argument_text(argument: str, what: str) -> str | bytes:
    """An argument's JSON text: as given, from stdin (``-``) or from a file (``@path``).

    Large payloads do not fit in an argument list (``Argument list too long``),
    so they come from stdin or a file instead.
    """
    if argument == "-":
        data: bytes = sys.stdin.buffer.read()
        return data
    if argument.startswith("@"):
        path = argument[1:]
        try:
            with open(path, "rb") as source:
                return source.read()
        except OSError as exc:
            raise UsageError(f"cannot read {what} from {path!r}: {exc.strerror or exc}") from None
    return argument


def _json_object(argument: str, what: str) -> dict[str, Any]:
    source = _argument_text(argument, what)
    try:
        value = orjson.loads(source)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


async def _announce_compile(runtime: Runtime, aggregate: str) -> None:
    """Say on stderr that a module is being compiled, when the compile cache misses.

    The first command after a publish (or with a fresh cache) spends seconds
    compiling the component; without a word the CLI would look hung. Loads the
    module now, so the command that follows finds it ready. Unknown aggregates
    are left to the command itself, which reports them.
    """
    from thalo.errors import RegistryError, UnknownAggregate
    from thalo.wasm.cache import CompileCache

    try:
        record = await runtime.registry.resolve(aggregate)
    except (UnknownAggregate, RegistryError):
        return
    if CompileCache().path(record.sha256).is_file():
        return
    with guarded():
        err_console.print(
            text(f"compiling {record.name} {record.version} (once; cached afterwards)…"),
            style="dim",
        )
    await runtime.modules.current(aggregate)


@click.command()
@click.argument("aggregate")
@click.argument("entity_id")
@click.argument("command")
@click.argument("payload", default="{}", required=False)
@click.option("--command-id", help="Idempotency key: the same id executes once.")
@click.option("--metadata", help="JSON object merged into each event's metadata.")
@click.option(
    "--async",
    "via_store",
    is_flag=True,
    help="Send the command through its command stream and wait for a `thalo run` to execute it.",
)
@click.option(
    "--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait with --async."
)
@click.option("--json", "as_json", is_flag=True, help="Print the recorded events as JSON.")
@server_options
def execute(
    aggregate: str,
    entity_id: str,
    command: str,
    payload: str,
    command_id: str | None,
    metadata: str | None,
    via_store: bool,
    timeout: float,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Run COMMAND with PAYLOAD (JSON) on entity ENTITY_ID of AGGREGATE; print its events.

    PAYLOAD (and --metadata) may be `-` to read the JSON from stdin, or
    `@FILE` to read it from FILE: large payloads do not fit on a command line.

    Exit codes: 1 refused by the aggregate, 2 bad input, 3 unresolved
    concurrency conflict, 4 the guest failed, 5 store (or server) unreachable.
    """
    body = _json_object(payload, "the payload")
    meta = _json_object(metadata, "--metadata") if metadata else None
    if url:
        with connect(url, token) as client:
            if via_store:
                submission = client.submit(
                    aggregate, entity_id, command, body, command_id=command_id, metadata=meta
                )
                result = client.wait(submission, timeout=timeout)
            else:
                result = client.execute(
                    aggregate, entity_id, command, body, command_id=command_id, metadata=meta
                )
        _print_events(aggregate, entity_id, command, result.events, as_json)
        return

    async def go(runtime: Runtime) -> list[Message]:
        if via_store:
            submitted = await runtime.submit(
                aggregate, entity_id, command, body, command_id=command_id, metadata=meta
            )
            return await runtime.wait(submitted, timeout=timeout)
        await _announce_compile(runtime, aggregate)
        return await runtime.execute(
            aggregate, entity_id, command, body, command_id=command_id, metadata=meta
        )

    _print_events(aggregate, entity_id, command, run_with_runtime(go), as_json)


def _print_events(
    aggregate: str, entity_id: str, command: str, events: list[Message], as_json: bool
) -> None:
    if as_json:
        print_json([m.to_dict() for m in events])
    elif not events:
        show(text(f"{aggregate} {entity_id}: {command} recorded no events"))
    else:
        print_messages(events, title=f"{aggregate} {entity_id}: {command}")


@click.command()
@click.argument("aggregate")
@click.argument("entity_id")
@click.option("--at", "at_position", type=int, help="State after the event at this position.")
@click.option("--at-time", "at_time", help="State as of this time (ISO 8601).")
@click.option(
    "--module",
    "module_version",
    metavar="VERSION",
    help="Replay with this published version [default: now the newest; in the past, "
    "the version that wrote the last event replayed].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_options
def state(
    aggregate: str,
    entity_id: str,
    at_position: int | None,
    at_time: str | None,
    module_version: str | None,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Show an entity's state: now, after a stream position, or as of a time.

    A past state is replayed by the module version that wrote its last event (as
    the runtime did then) unless --module is given; the output says which
    versions wrote the events and which one replayed them.
    """
    if at_position is not None and at_time is not None:
        raise UsageError("give --at or --at-time, not both")
    moment: datetime | None = None
    if at_time is not None:
        try:
            moment = datetime.fromisoformat(at_time)
        except ValueError:
            raise UsageError(f"--at-time {at_time!r} is not an ISO 8601 time") from None

    async def go(runtime: Runtime) -> EntityState:
        from rich.progress import Progress

        await _announce_compile(runtime, aggregate)
        with Progress(transient=True, console=err_console) as bar:
            task = bar.add_task("replaying events", total=None)
            return await runtime.state(
                aggregate,
                entity_id,
                at_position=at_position,
                at_time=moment,
                module_version=module_version,
                progress=lambda n: bar.advance(task, n),
            )

    if url:
        with connect(url, token) as client:
            result = client.state(
                aggregate,
                entity_id,
                at_position=at_position,
                at_time=moment,
                module_version=module_version,
            )
    else:
        result = run_with_runtime(go, read_only=True)
    if as_json:
        print_json(result.to_dict())
        return
    where = "no events" if result.version < 0 else f"version {result.version}"
    with guarded():
        show(
            f"[bold]{escape(result.aggregate)} {escape(result.entity_id)}[/] "
            f"({where}, module {escape(result.module_version)}{_chosen(result)})"
        )
        if result.written_by:
            runs = ", ".join(
                f"{w.module_version or 'unknown'} at {w.first}"
                + (f"–{w.last}" if w.last != w.first else "")
                for w in result.written_by
            )
            show(text(f"events written by {runs}"))
        state_text = orjson.dumps(result.state, option=orjson.OPT_INDENT_2).decode()
        show(text(state_text, 100_000), soft_wrap=True)


def _chosen(result: EntityState) -> str:
    """Why that module version replayed the state, for the header line."""
    if result.module_chosen_by == "history":
        return ": the version that wrote the last event replayed"
    if result.module_chosen_by == "request":
        return ": as asked with --module"
    return ""


@click.command()
@click.argument("aggregates", nargs=-1)
@click.option("--name", default="runtime", show_default=True, help="Consumer name (positions).")
@click.option("--group-member", type=int, help="This process's member number in its group.")
@click.option("--group-size", type=int, help="How many processes share the command streams.")
@click.option("--cache-size", type=int, default=10_000, show_default=True)
@click.option("--snapshot-every", type=int, default=100, show_default=True)
def run(
    aggregates: tuple[str, ...],
    name: str,
    group_member: int | None,
    group_size: int | None,
    cache_size: int,
    snapshot_every: int,
) -> None:
    """Execute commands sent through command streams (all published aggregates by default).

    Several processes can share a store: give each --group-member N --group-size M.
    Stops cleanly on Ctrl-C or SIGTERM, recording its positions.
    """
    if (group_member is None) != (group_size is None):
        raise UsageError("give --group-member and --group-size together")
    if group_size is not None and group_member is not None and not 0 <= group_member < group_size:
        raise UsageError(f"--group-member must be in 0..{group_size - 1}")

    async def go(runtime: Runtime) -> None:
        import asyncio
        import signal

        from thalo.consumer.commands import CommandConsumer

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        consumer = CommandConsumer(
            runtime,
            list(aggregates) or None,
            name=name,
            group_member=group_member,
            group_size=group_size,
        )
        group = "" if group_size is None else f" as member {group_member} of {group_size}"
        console.print(f"thalo run: consuming commands{group}; Ctrl-C stops", style="dim")
        await consumer.run(stop)
        console.print(
            f"stopped: {consumer.executed} commands succeeded, {consumer.failed} failed",
            style="dim",
        )

    run_with_runtime(go, cache_size=cache_size, snapshot_every=snapshot_every)
