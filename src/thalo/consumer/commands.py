"""The command consumer: executes commands that arrive through command streams.

Like the original thalo, commands can be sent through the store: ``submit``
writes one to ``{category}:command-{id}``; each ``thalo run`` process consumes
the command categories of every published aggregate (as one member of a
consumer group when several processes share a store), executes them with the
command message as causation, and answers in the command's reply stream.
"""

from __future__ import annotations

__all__ = ["CommandConsumer"]

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from thalo.consumer.consumer import Consumer, Handler, idle
from thalo.consumer.positions import register_consumer
from thalo.core import Message, NewMessage, command_stream_name, get_id
from thalo.core import metadata as keys
from thalo.errors import StoreError, ThaloError, UnknownAggregate, WrongExpectedVersion
from thalo.runtime import REPLY_FAILED, REPLY_SUCCEEDED, Runtime

log = logging.getLogger("thalo.consumer")


class CommandConsumer:
    """Consumes the command categories of ``aggregates`` (default: all published ones)."""

    def __init__(
        self,
        runtime: Runtime,
        aggregates: Sequence[str] | None = None,
        *,
        name: str = "runtime",
        group_member: int | None = None,
        group_size: int | None = None,
        poll_interval: float = 0.1,
        discover_interval: float = 2.0,
    ) -> None:
        self.runtime = runtime
        self.aggregates = list(aggregates) if aggregates else None
        self.name = name
        self.group_member = group_member
        self.group_size = group_size
        self.poll_interval = poll_interval
        self.discover_interval = discover_interval
        self.consumers: dict[str, Consumer] = {}
        self.executed = 0
        self.failed = 0

    async def _discover(self) -> None:
        names = self.aggregates
        if names is None:
            names = sorted({r.name for r in await self.runtime.registry.modules()})
        found = [aggregate for aggregate in names if aggregate not in self.consumers]
        if found:  # listed by `thalo projection status`, with its position and lag
            await register_consumer(
                self.runtime.store,
                name=self.name,
                kind="commands",
                categories=tuple(command_stream_name(a) for a in found),
                group_size=self.group_size,
            )
        for aggregate in found:
            if aggregate not in self.consumers:
                self.consumers[aggregate] = Consumer(
                    self.runtime.store,
                    command_stream_name(aggregate),
                    self._handler(aggregate),
                    name=self.name,
                    group_member=self.group_member,
                    group_size=self.group_size,
                    poll_interval=self.poll_interval,
                )

    def _handler(self, aggregate: str) -> Handler:
        async def handle(message: Message) -> None:
            await self.execute(aggregate, message)

        return handle

    async def execute(self, aggregate: str, message: Message) -> None:
        """Execute one command message and answer in its reply stream, if it has one."""
        entity_id = get_id(message.stream_name) or ""
        command_id = message.meta(keys.COMMAND_ID) or message.id
        reply_to = message.meta(keys.REPLY_STREAM_NAME)
        try:
            recorded = await self.runtime.record(
                aggregate,
                entity_id,
                message.type,
                message.data,
                command_id=str(command_id),
                causation=message,
            )
        except StoreError as exc:
            if exc.exit_code == 5:
                raise  # the store is gone: stop, and resume from the recorded position
            answer = self._failure(exc)
        except ThaloError as exc:
            answer = self._failure(exc)
        else:
            self.executed += 1
            answer = NewMessage(
                REPLY_SUCCEEDED,
                {
                    "streamName": recorded.stream_name,
                    "position": recorded.position,
                    "count": recorded.count,
                    "version": recorded.version,
                    "duplicate": recorded.duplicate,
                },
            )
        if answer.type == REPLY_FAILED:
            self.failed += 1
            log.warning(
                "%s %s: %s failed: %s", aggregate, entity_id, message.type, answer.data["message"]
            )
        if isinstance(reply_to, str):
            # The reply names its command, so a server can tell whose reply it is.
            answer = replace(
                answer,
                metadata={
                    keys.CAUSATION_MESSAGE_STREAM_NAME: message.stream_name,
                    keys.CAUSATION_MESSAGE_POSITION: message.position,
                    keys.CAUSATION_MESSAGE_GLOBAL_POSITION: message.global_position,
                },
            )
            try:
                # Expected version -1: one reply per command, even when a replacement
                # runner delivers the command again after a crash.
                await self.runtime.store.write_message(reply_to, answer, expected_version=-1)
            except WrongExpectedVersion:
                log.info("%s: already answered (a redelivered command)", reply_to)

    @staticmethod
    def _failure(exc: ThaloError) -> NewMessage:
        return NewMessage(
            REPLY_FAILED,
            {
                "error": type(exc).__name__,
                "message": exc.message,
                "exitCode": exc.exit_code,
                "httpStatus": exc.http_status,
                "fields": exc.fields(),
            },
        )

    async def poll(self) -> int:
        """Discover aggregates, then handle what is waiting in each command category once."""
        await self._discover()
        handled = 0
        for consumer in self.consumers.values():
            try:
                handled += await consumer.poll()
            except UnknownAggregate:
                continue
        return handled

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; positions are recorded as it goes and at the end."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        next_discovery = 0.0
        try:
            while not stop.is_set():
                if loop.time() >= next_discovery:
                    await self._discover()
                    next_discovery = loop.time() + self.discover_interval
                handled = 0
                for consumer in self.consumers.values():
                    handled += await consumer.poll()
                    await consumer.record_position()
                if not handled:
                    await idle(stop, self.poll_interval)
        finally:
            for consumer in self.consumers.values():
                await asyncio.shield(consumer.record_position())
