"""What one server process holds: the store, the runtime, the runner, and its shutdown state.

The app's routes share one ``Service``; uvicorn's lifespan starts and stops
it, and the process's signal handling calls ``begin_shutdown`` first, so that
event streams end and new commands are refused while in-flight ones finish.
"""

from __future__ import annotations

__all__ = ["Service"]

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from thalo.errors import ServerUnavailable
from thalo.server.metrics import Metrics

if TYPE_CHECKING:
    from thalo.consumer.commands import CommandConsumer
    from thalo.runtime import Runtime
    from thalo.server.config import ServerConfig
    from thalo.store import MessageStore

log = logging.getLogger("thalo.server")


class Service:
    """The runtime a server hosts, and the process-wide state its routes share."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.inflight = 0
        self.stopping = asyncio.Event()
        self._store: MessageStore | None = None
        self._runtime: Runtime | None = None
        self._runner: CommandConsumer | None = None
        self._runner_task: asyncio.Task[None] | None = None
        self._runner_stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._openapi: tuple[tuple[int, int], bytes] | None = None
        self.start_error: BaseException | None = None

    @property
    def store(self) -> MessageStore:
        if self._store is None:
            raise ServerUnavailable("the server is not started")
        return self._store

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise ServerUnavailable("the server is not started")
        return self._runtime

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, create the runtime and start the command runner."""
        try:
            await self._start()
        except BaseException as exc:
            self.start_error = exc
            raise

    async def _start(self) -> None:
        from thalo.runtime import Runtime
        from thalo.store import open_store

        config = self.config
        self._store = await open_store(config.store_url)
        self._runtime = Runtime(
            self._store,
            cache_size=config.cache_size,
            snapshot_every=config.snapshot_every,
            module_check_interval=config.module_check_interval,
        )
        await self._runtime.registry.ensure_schema()
        self.metrics.watch(self._runtime, self)
        if config.runner:
            from thalo.consumer.commands import CommandConsumer

            self._runner = CommandConsumer(
                self._runtime,
                name="runtime",
                group_member=config.group_member,
                group_size=config.group_size,
            )
            self._runner_task = asyncio.create_task(self._run_runner(self._runner))

    async def _run_runner(self, runner: CommandConsumer) -> None:
        """The command consumer; a failing store makes it pause and resume, not die."""
        while not self._runner_stop.is_set():
            try:
                await runner.run(self._runner_stop)
            except Exception:
                log.exception("the command runner failed; restarting in 1 s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._runner_stop.wait(), 1.0)

    def begin_shutdown(self) -> None:
        """Refuse new commands and end event streams; in-flight commands go on."""
        self.stopping.set()
        self.notify()

    async def stop(self) -> None:
        """After in-flight requests: stop the runner (positions recorded), close the store."""
        self.begin_shutdown()
        self._runner_stop.set()
        if self._runner_task is not None:
            try:
                await asyncio.wait_for(self._runner_task, self.config.shutdown_timeout)
            except Exception:
                log.exception("the command runner did not stop cleanly")
        if self._runtime is not None:
            await self._runtime.close()
        if self._store is not None:
            await self._store.close()

    # --- new messages ----------------------------------------------------------

    def notify(self) -> None:
        """Something was written (or the server stops): wake every live event stream."""
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    async def changed(self, timeout: float) -> None:
        """Wait until ``notify`` or ``timeout`` seconds, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    # --- the OpenAPI document ----------------------------------------------------

    async def openapi(self) -> bytes:
        """The OpenAPI document of what is published now (rebuilt after each publish)."""
        import orjson

        from thalo.server.openapi import openapi_document

        revision = await self.runtime.registry.revision()
        if self._openapi is None or self._openapi[0] != revision:
            latest: dict[str, Any] = {}
            for record in await self.runtime.registry.modules():
                if record.retired_at is None:  # sorted by version: the last wins
                    latest[record.name] = record.schema
            document = openapi_document(list(latest.values()))
            self._openapi = (revision, orjson.dumps(document))
        return self._openapi[1]
