"""Running one CLI command's work: against the store (and runtime) it names, or a server.

Commands that read or write take ``--url`` (env ``THALO_URL``): then they talk
to a ``thalo serve`` through ``thalo.client`` and open no store at all.
"""

from __future__ import annotations

__all__ = [
    "connect",
    "require_existing_store",
    "run_with_runtime",
    "run_with_store",
    "server_options",
    "store_url",
]

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from thalo.client import Client
    from thalo.runtime import Runtime
    from thalo.store import MessageStore

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def store_url() -> str:
    """The store the global ``--store`` (or ``THALO_STORE``, or the default) names."""
    settings = click.get_current_context().find_root().obj
    url: str = settings.store_url
    return url


def require_existing_store(url: str) -> None:
    """Raise ``StoreNotInitialized`` (exit 2) when ``url`` names an SQLite file that is absent.

    Read-only commands call this first: opening an SQLite store creates its file
    (and directories), and a command that only reads must not leave a store
    behind. A missing file is the caller's mistake (a wrong path, or nothing
    published yet), not an unreachable store, hence exit 2 rather than 5.
    Other URLs are left to ``open_store``, which creates nothing on them.
    """
    from thalo.errors import StoreNotInitialized
    from thalo.store.url import parse_sqlite_url

    if url.partition(":")[0].lower() != "sqlite":
        return
    path = parse_sqlite_url(url).path
    if path is not None and not path.is_file():
        raise StoreNotInitialized(
            f"no store at {path}: it is created by `thalo store init`, `thalo publish` "
            "or `thalo execute`; give the store to read with --store URL or THALO_STORE"
        )


def run_with_store(work: Callable[[MessageStore], Awaitable[T]], *, read_only: bool = False) -> T:
    """Open the global ``--store``, run ``work`` on it, close it; errors propagate.

    ``read_only``: the store must already exist (see ``require_existing_store``).
    """
    from thalo.store import open_store

    url = store_url()
    if read_only:
        require_existing_store(url)

    async def go() -> T:
        async with open_store(url) as store:
            return await work(store)

    return asyncio.run(go())


def run_with_runtime(
    work: Callable[[Runtime], Awaitable[T]], *, read_only: bool = False, **options: object
) -> T:
    """Like ``run_with_store``, with a ``Runtime`` over that store."""
    from thalo.runtime import Runtime

    async def with_runtime(store: MessageStore) -> T:
        async with Runtime(store, **options) as runtime:  # type: ignore[arg-type]
            return await work(runtime)

    return run_with_store(with_runtime, read_only=read_only)


def server_options(command: F) -> F:
    """Add ``--url`` and ``--token``: talk to a ``thalo serve`` instead of opening a store.

    The command receives them as ``url`` and ``token`` (``None`` when not given).
    """
    command = click.option(
        "--token",
        envvar="THALO_TOKEN",
        metavar="TOKEN",
        default=None,
        show_envvar=True,
        help="Bearer token for --url (the admin token for publish, retire and gc).",
    )(command)
    return click.option(
        "--url",
        envvar="THALO_URL",
        metavar="URL",
        default=None,
        show_envvar=True,
        help="Send this to a `thalo serve` at URL instead of opening --store.",
    )(command)


def connect(url: str, token: str | None) -> Client:
    """A client for the server at ``url`` (imported here: ``thalo --help`` stays fast)."""
    from thalo.client import Client

    return Client(url, token)
