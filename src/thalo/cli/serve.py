"""``thalo serve``: the runtime as an HTTP service (docs/http.md)."""

from __future__ import annotations

__all__ = ["serve"]

from pathlib import Path

import click

from thalo.cli.session import store_url
from thalo.errors import UsageError

_SIZES = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2}
_SIZES |= {"mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def _size(text: str, option: str) -> int:
    """``1MiB``, ``512k``, ``1048576`` → bytes."""
    raw = text.strip().lower()
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :]
    try:
        value = int(float(number) * _SIZES[unit])
    except (ValueError, KeyError):
        raise UsageError(f"{option} {text!r} is not a size (e.g. 1MiB, 512k, 1048576)") from None
    if value < 1:
        raise UsageError(f"{option} must be at least 1 byte")
    return value


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=4433, show_default=True, help="Port to listen on.")
@click.option(
    "--store", "store", metavar="URL", help="Message store URL (overrides the global --store)."
)
@click.option(
    "--admin-token",
    envvar="THALO_ADMIN_TOKEN",
    help="Bearer token for publishing [env THALO_ADMIN_TOKEN]; without it publishing is refused.",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Client tokens, one per line (`TOKEN` or `TOKEN Agg1,Agg2`); then reads and "
    "commands need one.",
)
@click.option("--max-body", default="1MiB", show_default=True, help="Largest command body.")
@click.option("--max-module-size", default="64MiB", show_default=True, help="Largest publish.")
@click.option(
    "--max-inflight",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Commands in flight before new ones get 429.",
)
@click.option("--cors-origin", "cors_origins", multiple=True, help="Allow this browser origin.")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--no-runner", is_flag=True, help="Do not consume command streams (`thalo run`).")
@click.option("--group-member", type=int, help="The runner's member number in its group.")
@click.option("--group-size", type=int, help="How many runners share the command streams.")
@click.option("--cache-size", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--snapshot-every", type=click.IntRange(0), default=100, show_default=True)
@click.option(
    "--module-check-interval",
    type=click.FloatRange(0.0),
    default=1.0,
    show_default=True,
    help="Seconds between asks of the registry for versions other processes published "
    "or retired (this server's own publishes and retirements apply at once).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds a request body may take to arrive (slow clients get 408).",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds in-flight requests get after SIGTERM.",
)
def serve(
    host: str,
    port: int,
    store: str | None,
    admin_token: str | None,
    token_file: Path | None,
    max_body: str,
    max_module_size: str,
    max_inflight: int,
    cors_origins: tuple[str, ...],
    log_format: str,
    no_runner: bool,
    group_member: int | None,
    group_size: int | None,
    cache_size: int,
    snapshot_every: int,
    module_check_interval: float,
    body_timeout: float,
    shutdown_timeout: float,
) -> None:
    """Serve the HTTP API: commands, entities, streams (SSE), modules, metrics, OpenAPI.

    Stops gracefully on SIGTERM or Ctrl-C: in-flight commands finish first.
    """
    from thalo.server.auth import Tokens, load_tokens
    from thalo.server.config import ServerConfig
    from thalo.server.process import serve as run_server

    if (group_member is None) != (group_size is None):
        raise UsageError("give --group-member and --group-size together")
    if group_size is not None and group_member is not None and not 0 <= group_member < group_size:
        raise UsageError(f"--group-member must be in 0..{group_size - 1}")
    if admin_token is not None and len(admin_token) < 16:
        raise UsageError("--admin-token must be at least 16 characters")
    config = ServerConfig(
        store_url=store or store_url(),
        host=host,
        port=port,
        admin_token=admin_token or None,
        tokens=load_tokens(token_file) if token_file else Tokens(),
        max_body=_size(max_body, "--max-body"),
        max_module_size=_size(max_module_size, "--max-module-size"),
        max_inflight=max_inflight,
        cors_origins=cors_origins,
        log_format=log_format,
        runner=not no_runner,
        group_member=group_member,
        group_size=group_size,
        cache_size=cache_size,
        snapshot_every=snapshot_every,
        module_check_interval=module_check_interval,
        body_timeout=body_timeout,
        shutdown_timeout=shutdown_timeout,
    )
    run_server(config)
