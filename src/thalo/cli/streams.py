"""``thalo stream`` and ``thalo category``: read what the store recorded.

With ``--url`` they read through a ``thalo serve`` instead (``--follow`` then
rides its Server-Sent Events); the output is the same either way.
"""

from __future__ import annotations

__all__ = ["LinePrinter", "category", "print_messages", "stream"]

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
import orjson
from rich.table import Table

from thalo.cli.output import escape, guarded, print_json, show, stdout_closed, text
from thalo.cli.session import connect, run_with_store, server_options

if TYPE_CHECKING:
    from thalo.core import Message
    from thalo.store import MessageStore


def print_messages(messages: Sequence[Message], *, title: str | None = None) -> None:
    """A table of messages: positions, type, data; the stream only when they differ.

    Every stored value is shown as plain text (never markup), cleaned and cut
    to ``CELL_LIMIT`` characters, so one huge event prints as fast as a small one.
    """
    streams = {m.stream_name for m in messages}
    table = Table(
        title=text(title) if title is not None else None,
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("pos", justify="right")
    table.add_column("global", justify="right", style="dim")
    if len(streams) > 1:
        table.add_column("stream")
    table.add_column("type", style="bold")
    table.add_column("data", overflow="fold", ratio=1)
    table.add_column("time (UTC)", style="dim", no_wrap=True)
    for m in messages:
        row = [text(m.position), text(m.global_position)]
        if len(streams) > 1:
            row.append(text(m.stream_name))
        row += [text(m.type), text(_data(m)), text(m.time.strftime("%H:%M:%S.%f")[:-3])]
        table.add_row(*row)
    show(table)


def _data(message: Message) -> str:
    return orjson.dumps(message.data).decode()


class LinePrinter:
    """``category --follow`` without ``--json``: one line per message, one header.

    A follow prints messages of many streams as they arrive, so each line names
    its stream: ``global  stream  pos  type  data  time``. Untrusted values are
    cleaned and bounded as in tables.
    """

    def __init__(self) -> None:
        self._header = False

    def print(self, message: Message) -> None:
        """Print ``message`` as one line (after the header, the first time)."""
        with guarded():
            if not self._header:
                show(text("global  stream@position  type  data  time (UTC)", style="dim"))
                self._header = True
            line = text(f"{message.global_position:>7}  ", style="dim")
            line.append_text(text(f"{message.stream_name}@{message.position}"))
            line.append("  ")
            line.append_text(text(message.type, style="bold"))
            line.append("  ")
            line.append_text(text(_data(message)))
            line.append(f"  {message.time.strftime('%H:%M:%S.%f')[:-3]}", style="dim")
            show(line, soft_wrap=True)


def _echo_json(message: Message) -> None:
    with guarded():
        click.echo(orjson.dumps(message.to_dict()).decode())


@click.command()
@click.argument("stream_name")
@click.option("--from", "position", type=int, default=0, show_default=True, help="First position.")
@click.option("--limit", type=int, default=1000, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_options
def stream(
    stream_name: str, position: int, limit: int, as_json: bool, url: str | None, token: str | None
) -> None:
    """Show the messages of one stream (e.g. counter-c1)."""

    async def read(store: MessageStore) -> list[Message]:
        return await store.get_stream_messages(stream_name, position, limit)

    if url:
        with connect(url, token) as client:
            messages = client.stream(stream_name, position, limit)
    else:
        messages = run_with_store(read, read_only=True)
    if as_json:
        print_json([m.to_dict() for m in messages])
    elif not messages:
        show(f"stream {escape(stream_name)} has no messages from position {position}")
    else:
        print_messages(messages, title=stream_name)


@click.command()
@click.argument("category_name")
@click.option("--from", "position", type=int, default=1, show_default=True, help="Global position.")
@click.option("--limit", type=int, default=1000, show_default=True, help="At most this many.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new messages as they arrive.")
@click.option("--poll", type=float, default=0.2, show_default=True, help="Seconds between polls.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per line with -f).")
@server_options
def category(
    category_name: str,
    position: int,
    limit: int,
    follow: bool,
    poll: float,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Show the messages of a category (e.g. counter), optionally following it.

    With --url, --follow listens to the server's event stream (no polling) and
    resumes by itself after a dropped connection.
    """

    async def read(store: MessageStore) -> list[Message]:
        if not follow:
            return await store.get_category_messages(category_name, position, limit)
        after = position
        lines = LinePrinter()
        while not stdout_closed():
            batch = await store.get_category_messages(category_name, after, limit)
            for m in batch:
                if as_json:
                    _echo_json(m)
                else:
                    lines.print(m)
            if batch:
                after = batch[-1].global_position + 1
            else:
                await asyncio.sleep(poll)
        return []  # stdout's reader went away: stop following

    try:
        if not url:
            messages = run_with_store(read, read_only=True)
        elif follow:
            _follow_remote(url, token, category_name, position, as_json)
            return
        else:
            with connect(url, token) as client:
                messages = client.category(category_name, position, limit)
    except KeyboardInterrupt:
        return
    if follow:
        return  # everything was printed as it arrived
    if as_json:
        print_json([m.to_dict() for m in messages])
    elif not messages:
        show(f"category {escape(category_name)} has no messages from position {position}")
    else:
        print_messages(messages, title=category_name)


def _follow_remote(
    url: str, token: str | None, category_name: str, position: int, as_json: bool
) -> None:
    """``category --follow --url``: print each message of the server's event stream."""
    with connect(url, token) as client:
        feed = client.subscribe(category_name, position=position, category=True)
        lines = LinePrinter()
        try:
            for m in feed:
                if as_json:
                    _echo_json(m)
                else:
                    lines.print(m)
                if stdout_closed():
                    return
        finally:
            feed.close()
