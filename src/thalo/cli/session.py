"""Running one CLI command's async work against the store (and the runtime) it names."""

from __future__ import annotations

__all__ = ["run_with_runtime", "run_with_store"]

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from thalo.runtime import Runtime
    from thalo.store import MessageStore

T = TypeVar("T")


def _store_url() -> str:
    settings = click.get_current_context().find_root().obj
    url: str = settings.store_url
    return url


def run_with_store(work: Callable[[MessageStore], Awaitable[T]]) -> T:
    """Open the global ``--store``, run ``work`` on it, close it; errors propagate."""
    from thalo.store import open_store

    async def go() -> T:
        async with open_store(_store_url()) as store:
            return await work(store)

    return asyncio.run(go())


def run_with_runtime(work: Callable[[Runtime], Awaitable[T]], **options: object) -> T:
    """Like ``run_with_store``, with a ``Runtime`` over that store."""
    from thalo.runtime import Runtime

    async def with_runtime(store: MessageStore) -> T:
        async with Runtime(store, **options) as runtime:  # type: ignore[arg-type]
            return await work(runtime)

    return run_with_store(with_runtime)
