"""``thalo relay CATEGORY --to nats://… | redis://…``: forward a category's events to a broker.

The relay itself is ``thalo.consumer.relay.Relay``; this module parses the
command line, shows a progress line on stderr and stops cleanly on SIGINT or
SIGTERM (recording the position). ``nats`` / ``redis`` are imported only here,
when the command runs, and a missing one is a usage error naming the extra.
"""

from __future__ import annotations

__all__ = ["relay"]

import importlib
import logging
from typing import TYPE_CHECKING

import click

from thalo.cli.output import err_console
from thalo.cli.session import run_with_store
from thalo.errors import UsageError

if TYPE_CHECKING:
    from thalo.consumer.relay import Rate, Relay
    from thalo.store import MessageStore

_PACKAGES = {
    "nats": ("nats", "nats-py"),
    "tls": ("nats", "nats-py"),
    "redis": ("redis", "redis"),
    "rediss": ("redis", "redis"),
}


def _require_client(url: str) -> bool:
    """Whether ``url`` names NATS (else Redis); a usage error (exit 2) for another scheme,
    or naming the extra when the broker's client package is missing."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _PACKAGES:
        raise UsageError(f"--to {url!r}: give nats://HOST:PORT or redis://HOST:PORT[/DB]")
    module, package = _PACKAGES[scheme]
    try:
        importlib.import_module(module)  # the command is about to use it anyway
    except ImportError:
        raise UsageError(
            f"relaying to {scheme} needs the {package} package: pip install 'thalo[relay]'"
        ) from None
    return module == "nats"


class _StderrHandler(logging.Handler):
    """Relay warnings (a broker away, retries) on stderr, on their own line."""

    def emit(self, record: logging.LogRecord) -> None:
        from thalo.cli.output import text

        try:
            err_console.print(text(self.format(record), 2000, style="yellow"), soft_wrap=True)
        except Exception:  # pragma: no cover - printing must never stop the relay
            self.handleError(record)


async def _line(relay: Relay, rate: Rate, *, final: bool = False) -> str | None:
    """``relay CATEGORY: position P, lag L, R events/s, D already there`` (None: store away).

    ``final``: the line printed after the relay stopped (no broker state then).
    """
    from thalo.consumer.relay import category_head

    try:
        head = await category_head(relay.store, relay.category)
    except Exception:  # the store is away: the relay logs that itself
        return None
    position = (relay.position or 1) - 1
    state = "" if relay.connected or final else "  [broker unreachable, retrying]"
    return (
        f"relay {relay.category}: position {position}, lag {max(0, head - position)}, "
        f"{rate.update(relay.handled):,.0f} events/s, {relay.duplicates} already there{state}"
    )


async def _progress(relay: Relay, rate: Rate, live: bool, every: float) -> None:
    """Print the progress line every ``every`` seconds (rewritten in place on a TTY)."""
    import asyncio

    last = ""
    while True:
        await asyncio.sleep(every)
        line = await _line(relay, rate)
        if line is None or (line == last and not live):
            continue
        _emit(line, live)
        last = line


def _emit(line: str, live: bool) -> None:
    """One progress line on stderr: rewriting the current line on a TTY, a new line otherwise."""
    import sys

    sys.stderr.write(f"\r\x1b[2K{line}" if live else f"{line}\n")
    sys.stderr.flush()


@click.command()
@click.argument("category_name", metavar="CATEGORY")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL",
    help="nats://HOST:PORT (JetStream) or redis://HOST:PORT[/DB] (Redis Streams).",
)
@click.option(
    "--name",
    default=None,
    help="Consumer name for the position stream [default: relay-nats or relay-redis].",
)
@click.option("--batch-size", type=click.IntRange(1, 4000), default=500, show_default=True)
@click.option("--poll", type=float, default=0.1, show_default=True, help="Idle poll seconds.")
@click.option(
    "--nats-stream",
    default=None,
    metavar="NAME",
    help="JetStream stream to create when none captures thalo.CATEGORY.> "
    "[default: THALO_CATEGORY].",
)
@click.option(
    "--duplicate-window",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds of JetStream deduplication, for a stream the relay creates.",
)
@click.option(
    "--progress-every", type=float, default=1.0, show_default=True, help="Seconds between lines."
)
def relay(
    category_name: str,
    to: str,
    name: str | None,
    batch_size: int,
    poll: float,
    nats_stream: str | None,
    duplicate_window: float,
    progress_every: float,
) -> None:
    """Forward CATEGORY's events to NATS JetStream or Redis Streams, resuming where it stopped.

    NATS: subject thalo.CATEGORY.TYPE, Nats-Msg-Id = message id. Redis: XADD
    thalo:CATEGORY with entry id GLOBAL_POSITION-0. At least once, deduplicated
    by the broker. Ctrl-C or SIGTERM stops it after recording its position.
    """
    from thalo.core import validate_category

    validate_category(category_name)
    is_nats = _require_client(to)
    consumer_name = name or ("relay-nats" if is_nats else "relay-redis")

    async def go(store: MessageStore) -> None:
        import asyncio
        import contextlib
        import signal
        import sys

        from thalo.consumer.relay import NatsBroker, Rate, RedisBroker, Relay

        broker = (
            NatsBroker(to, category_name, stream=nats_stream, duplicate_window=duplicate_window)
            if is_nats
            else RedisBroker(to, category_name)
        )
        runner = Relay(
            store, category_name, broker, name=consumer_name, batch_size=batch_size,
            poll_interval=poll,
        )  # fmt: skip
        from thalo.consumer.positions import register_consumer

        # listed by `thalo projection status`, with its position and lag
        await register_consumer(
            store, name=consumer_name, kind="relay", categories=(category_name,)
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("thalo.consumer.relay")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        live = sys.stderr.isatty()
        err_console.print(
            f"thalo relay: {category_name} → {broker.description} as {runner.position_stream}; "
            "Ctrl-C stops",
            markup=False,
            highlight=False,
        )
        rate = Rate()
        progress = asyncio.create_task(_progress(runner, rate, live, progress_every))
        try:
            await runner.run(stop)
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
            logger.removeHandler(handler)
        final = await _line(runner, rate, final=True)  # where it stopped, at last
        if final is not None:
            _emit(final + ("\n" if live else ""), live)
        err_console.print(
            f"stopped at position {(runner.position or 1) - 1}: {runner.handled} relayed, "
            f"{runner.duplicates} already at the broker",
            markup=False,
            highlight=False,
        )

    run_with_store(go, read_only=True)  # the store must exist (nothing to relay otherwise)
