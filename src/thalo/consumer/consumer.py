"""Consumers: read a category in order, hand each message to a handler, remember where they were.

Message DB's consumer model (as Eventide's): a consumer polls
``get_category_messages`` from its position, optionally as one member of a
consumer group (``hash_64(cardinal_id) mod size``), and records its position
in ``{category}:position-{name}`` every ``position_update_interval`` messages
and when it stops. Delivery is at least once: after a crash, messages since
the last recorded position are handled again, so handlers must be idempotent.
"""

from __future__ import annotations

__all__ = ["POSITION_TYPE", "Consumer", "Handler", "idle"]

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from thalo.core import Message, NewMessage, category, position_stream_name, validate_category
from thalo.store import MessageStore

POSITION_TYPE = "Recorded"
Handler = Callable[[Message], Awaitable[None]]
log = logging.getLogger("thalo.consumer")


async def idle(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking at once when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Consumer:
    """Feeds the messages of ``category_name`` to ``handler``, in global order."""

    def __init__(
        self,
        store: MessageStore,
        category_name: str,
        handler: Handler,
        *,
        name: str,
        group_member: int | None = None,
        group_size: int | None = None,
        batch_size: int = 100,
        poll_interval: float = 0.1,
        position_update_interval: int = 100,
        correlation: str | None = None,
    ) -> None:
        validate_category(category_name)
        if (group_member is None) != (group_size is None):
            raise ValueError("give both group_member and group_size, or neither")
        self.store = store
        self.category = category_name
        self.handler = handler
        self.group_member = group_member
        self.group_size = group_size
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.position_update_interval = position_update_interval
        self.correlation = correlation
        identity = name if group_size is None else f"{name}+{group_member}of{group_size}"
        self.position_stream = position_stream_name(category(category_name), identity)
        self.position: int | None = None  # next global position to read
        self._unrecorded = 0
        self._recorded: int | None = None
        self.handled = 0

    async def start_position(self) -> int:
        """The global position to read from: after the last recorded one, or 1."""
        last = await self.store.get_last_stream_message(self.position_stream, POSITION_TYPE)
        return 1 if last is None else int(last.data["position"]) + 1

    async def poll(self) -> int:
        """Handle the messages available now (one batch); return how many."""
        if self.position is None:
            self.position = await self.start_position()
        batch = await self.store.get_category_messages(
            self.category,
            self.position,
            self.batch_size,
            correlation=self.correlation,
            consumer_group_member=self.group_member,
            consumer_group_size=self.group_size,
        )
        for message in batch:
            await self.handler(message)
            self.position = message.global_position + 1
            self.handled += 1
            self._unrecorded += 1
            if self._unrecorded >= self.position_update_interval:
                await self.record_position()
        return len(batch)

    async def record_position(self) -> None:
        """Write the position of the last handled message, if it moved."""
        if self.position is None or self.position - 1 == self._recorded or self.position <= 1:
            return
        last = self.position - 1
        await self.store.write_message(
            self.position_stream, NewMessage(POSITION_TYPE, {"position": last})
        )
        self._recorded = last
        self._unrecorded = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll until ``stop`` is set (or forever), then record the position."""
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set():
                handled = await self.poll()
                if handled < self.batch_size:
                    # Caught up: sleep, but wake at once when asked to stop.
                    if handled:
                        await self.record_position()
                    await idle(stop, self.poll_interval)
        finally:
            await asyncio.shield(self.record_position())
