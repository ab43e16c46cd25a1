"""Projections: what a read model reads and the handlers that apply it, as plain Python.

Two kinds, declared the same way:

- :class:`Projection` is delivered **at least once**: after a crash the
  messages since the last recorded position (``{category}:position-{name}``,
  written every ``position_update_interval`` messages and on clean shutdown)
  are delivered again, so its handlers should be idempotent (the message id
  and global position are there for that).
- :class:`ReadModel` is **exactly once** for what it writes through the
  transaction its handlers receive: thalo commits the handlers' rows and the
  position (in its table ``thalo_read_model_positions``) together, many
  messages per transaction while catching up.

::

    counters = ReadModel("counters", "counter")

    @counters.setup
    async def create(tx: SqlTransaction) -> None:
        await tx.execute("CREATE TABLE IF NOT EXISTS counters (id TEXT PRIMARY KEY, count INTEGER)")

    @counters.on("Incremented")
    async def incremented(message: Message, tx: SqlTransaction) -> None: ...

Handlers may be plain functions or coroutines. The objects only describe a
projection; :class:`thalo.consumer.ProjectionRunner` runs one.
"""

from __future__ import annotations

__all__ = [
    "Hook",
    "MessageHandler",
    "Projection",
    "ReadModel",
    "TransactionHandler",
    "TransactionHook",
]

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from thalo.core import Message, stream_name, validate_category
from thalo.store import SqlTransaction

MessageHandler = Callable[[Message], Awaitable[None] | None]
"""An at-least-once handler: called with each message of its types."""
TransactionHandler = Callable[[Message, SqlTransaction], Awaitable[None] | None]
"""A read model's handler: the message and the open transaction of its batch."""
Hook = Callable[[], Awaitable[None] | None]
"""A projection's reset hook (``thalo projection rebuild``)."""
TransactionHook = Callable[[SqlTransaction], Awaitable[None] | None]
"""A read model's setup or reset hook, run in a transaction of its database."""

H = TypeVar("H", bound=Callable[..., object])
_NAME = re.compile(r"^[A-Za-z0-9_.:+]+$")


class _ProjectionBase:
    """What both kinds share: a name, the categories read, delivery and failure settings."""

    def __init__(
        self,
        name: str,
        categories: str | Sequence[str],
        *,
        batch_size: int = 1000,
        position_update_interval: int = 100,
        max_attempts: int | None = 5,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
    ) -> None:
        if not _NAME.match(name) or "-" in name:
            raise ValueError(
                f"projection name {name!r}: use letters, digits and _ . : + (it names streams)"
            )
        cats = (categories,) if isinstance(categories, str) else tuple(categories)
        if not cats:
            raise ValueError("a projection reads at least one category")
        for cat in cats:
            validate_category(cat)
        if batch_size < 1 or position_update_interval < 1:
            raise ValueError("batch_size and position_update_interval must be at least 1")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None: retry forever)")
        self.name = name
        self.categories = cats
        self.batch_size = batch_size
        self.position_update_interval = position_update_interval
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay

    @property
    def types(self) -> tuple[str, ...]:
        """The event types that have a handler (other messages are skipped, in order)."""
        raise NotImplementedError

    def identity(self, group_member: int | None, group_size: int | None) -> str:
        """The consumer id in position streams: the name, plus ``+{m}of{n}`` in a group."""
        return self.name if group_size is None else f"{self.name}+{group_member}of{group_size}"

    def position_stream(
        self, category_name: str, group_member: int | None = None, group_size: int | None = None
    ) -> str:
        """``{category}:position-{identity}``, Message DB's convention."""
        return stream_name(category_name, self.identity(group_member, group_size), "position")

    def parked_stream(self, category_name: str) -> str:
        """``{category}:parked-{name}``: messages whose handler kept failing."""
        return stream_name(category_name, self.name, "parked")

    def parked_position_stream(self, category_name: str) -> str:
        """``{category}:parked+position-{name}``: how far ``replay-parked`` has come."""
        return stream_name(category_name, self.name, "parked", "position")


def _register(table: dict[str, H], types: tuple[str, ...], handler: H) -> H:
    if not types:
        raise ValueError("name at least one event type: @projection.on('Incremented')")
    for kind in types:
        if kind in table:
            raise ValueError(f"event type {kind!r} already has a handler")
        table[kind] = handler
    return handler


class Projection(_ProjectionBase):
    """An at-least-once projection: ``@projection.on("Type")`` handlers take the message."""

    def __init__(
        self,
        name: str,
        categories: str | Sequence[str],
        *,
        batch_size: int = 1000,
        position_update_interval: int = 100,
        max_attempts: int | None = 5,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
    ) -> None:
        super().__init__(
            name,
            categories,
            batch_size=batch_size,
            position_update_interval=position_update_interval,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
            max_retry_delay=max_retry_delay,
        )
        self.handlers: dict[str, MessageHandler] = {}
        self.reset_hook: Hook | None = None

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.handlers)

    def on(self, *types: str) -> Callable[[MessageHandler], MessageHandler]:
        """Register the decorated function as the handler of ``types``."""
        return lambda handler: _register(self.handlers, types, handler)

    def reset(self, hook: Hook) -> Hook:
        """Register what ``rebuild`` calls before replaying from the start (clear your data)."""
        self.reset_hook = hook
        return hook


class ReadModel(_ProjectionBase):
    """An exactly-once read model: handlers take the message and the batch's transaction.

    ``database``: ``None`` for the store's own database (the SQLite file, or
    the Message DB database's ``thalo`` schema), or ``sqlite:///file.db`` /
    ``postgresql://…`` for another one. The position is kept in a table of that
    database, ``thalo_read_model_positions``, in the same transaction.
    """

    def __init__(
        self,
        name: str,
        categories: str | Sequence[str],
        *,
        database: str | None = None,
        batch_size: int = 1000,
        position_update_interval: int = 1000,
        max_attempts: int | None = 5,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
    ) -> None:
        super().__init__(
            name,
            categories,
            batch_size=batch_size,
            position_update_interval=position_update_interval,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
            max_retry_delay=max_retry_delay,
        )
        self.database = database
        self.handlers: dict[str, TransactionHandler] = {}
        self.setup_hook: TransactionHook | None = None
        self.reset_hook: TransactionHook | None = None

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(self.handlers)

    def on(self, *types: str) -> Callable[[TransactionHandler], TransactionHandler]:
        """Register the decorated function as the handler of ``types``."""
        return lambda handler: _register(self.handlers, types, handler)

    def setup(self, hook: TransactionHook) -> TransactionHook:
        """Register what runs (in a transaction) before the first message: create tables."""
        self.setup_hook = hook
        return hook

    def reset(self, hook: TransactionHook) -> TransactionHook:
        """Register what ``rebuild`` runs, in the transaction that resets the position."""
        self.reset_hook = hook
        return hook
