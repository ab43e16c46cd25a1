"""Where consumers keep their positions, and the catalog ``thalo projection status`` reads.

- **Position streams** (Message DB's way): ``{category}:position-{consumer}``
  holds ``Recorded`` messages ``{"position": global_position}``; the last one
  counts. At-least-once projections write one every N messages and on stop.
- **Position table** ``thalo_read_model_positions(stream_name, position)`` in a
  read model's own database, keyed by the same position stream name, updated
  in the read model's transactions: exactly once.
- **Catalog** ``thalo_projections`` in the store's own database: every
  projection that ran, its kind, categories, the target it was loaded from
  (so ``rebuild NAME`` and ``replay-parked NAME`` can load it again) and
  whether its table position lives in the store's database.
- Category **lag**: how many of a category's messages lie after a position,
  counted on Message DB's own index (read only; its tables stay untouched).
"""

from __future__ import annotations

__all__ = [
    "POSITION_TABLE",
    "CatalogEntry",
    "category_lag",
    "list_projections",
    "read_stream_position",
    "read_table_position",
    "register_projection",
    "store_head",
    "write_stream_position",
    "write_table_position",
]

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from thalo.consumer.consumer import POSITION_TYPE
from thalo.core import NewMessage
from thalo.store import MessageStore, SqlTransaction

POSITION_TABLE = "thalo_read_model_positions"
_CATALOG = "thalo_projections"


async def read_stream_position(store: MessageStore, stream: str) -> int | None:
    """The last global position recorded in a position stream, or None."""
    last = await store.get_last_stream_message(stream, POSITION_TYPE)
    return None if last is None else int(last.data["position"])


async def write_stream_position(store: MessageStore, stream: str, position: int) -> None:
    """Append ``Recorded {"position": position}`` to a position stream."""
    await store.write_message(stream, NewMessage(POSITION_TYPE, {"position": position}))


async def ensure_position_table(tx: SqlTransaction) -> None:
    """Create the position table if missing (idempotent)."""
    await tx.execute(
        f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} "
        "(stream_name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
    )


async def read_table_position(tx: SqlTransaction, stream: str) -> int | None:
    """The position kept in the table under ``stream``'s name, or None."""
    rows = await tx.execute(
        f"SELECT position FROM {POSITION_TABLE} WHERE stream_name = %s", (stream,)
    )
    return None if not rows else int(rows[0][0])


async def write_table_position(tx: SqlTransaction, stream: str, position: int) -> None:
    """Upsert the position in the read model's transaction."""
    await tx.execute(
        f"INSERT INTO {POSITION_TABLE} (stream_name, position) VALUES (%s, %s) "
        "ON CONFLICT (stream_name) DO UPDATE SET position = excluded.position",
        (stream, position),
    )


@dataclass(frozen=True)
class CatalogEntry:
    """One projection that has run against this store."""

    name: str
    kind: str  # "projection" | "read_model" | "commands" | "relay"
    categories: tuple[str, ...]
    target: str | None
    group_size: int | None
    table_in_store: bool
    updated_at: str


async def _ensure_catalog(tx: SqlTransaction) -> None:
    await tx.execute(
        f"CREATE TABLE IF NOT EXISTS {_CATALOG} (name TEXT PRIMARY KEY, kind TEXT NOT NULL, "
        "categories TEXT NOT NULL, target TEXT, group_size INTEGER, "
        "table_in_store INTEGER NOT NULL, updated_at TEXT NOT NULL)"
    )


async def register_projection(
    store: MessageStore,
    *,
    name: str,
    kind: str,
    categories: tuple[str, ...],
    target: str | None,
    group_size: int | None,
    table_in_store: bool,
) -> None:
    """Record (or refresh) a projection in the catalog; a missing target keeps the old one."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    async with store.transaction() as tx:
        await _ensure_catalog(tx)
        await tx.execute(
            f"INSERT INTO {_CATALOG} (name, kind, categories, target, group_size, "
            "table_in_store, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
            "categories = excluded.categories, "
            f"target = COALESCE(excluded.target, {_CATALOG}.target), "
            "group_size = excluded.group_size, table_in_store = excluded.table_in_store, "
            "updated_at = excluded.updated_at",
            (
                name,
                kind,
                json.dumps(list(categories)),
                target,
                group_size,
                int(table_in_store),
                now,
            ),
        )


async def register_consumer(
    store: MessageStore,
    *,
    name: str,
    kind: str,
    categories: tuple[str, ...],
    group_size: int | None = None,
) -> None:
    """Record a consumer that is not a projection (the command consumer of ``thalo run``
    and ``thalo serve``, a relay) so that ``thalo projection status`` lists it too; its
    categories add to those recorded before under the same name."""
    known = {entry.name: entry for entry in await list_projections(store)}
    if name in known:
        categories = tuple(sorted({*known[name].categories, *categories}))
    await register_projection(
        store,
        name=name,
        kind=kind,
        categories=categories,
        target=None,
        group_size=group_size,
        table_in_store=False,
    )


async def list_projections(store: MessageStore) -> list[CatalogEntry]:
    """Every projection in the catalog, by name ([] when none ever ran)."""
    async with store.transaction(read_only=True) as tx:
        exists = await _table_exists(tx, _CATALOG)
        if not exists:
            return []
        rows = await tx.execute(
            f"SELECT name, kind, categories, target, group_size, table_in_store, updated_at "
            f"FROM {_CATALOG} ORDER BY name"
        )
    return [
        CatalogEntry(
            str(r[0]),
            str(r[1]),
            tuple(json.loads(r[2])),
            None if r[3] is None else str(r[3]),
            None if r[4] is None else int(r[4]),
            bool(r[5]),
            str(r[6]),
        )
        for r in rows
    ]


async def _table_exists(tx: SqlTransaction, table: str) -> bool:
    if tx.dialect == "sqlite":
        rows = await tx.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", (table,)
        )
    else:
        rows = await tx.execute("SELECT to_regclass(%s) IS NOT NULL", (f"thalo.{table}",))
        return bool(rows and rows[0][0])
    return bool(rows)


async def read_store_table_position(store: MessageStore, stream: str) -> int | None:
    """A read model's table position when its table is in the store's own database."""
    async with store.transaction(read_only=True) as tx:
        if not await _table_exists(tx, POSITION_TABLE):
            return None
        return await read_table_position(tx, stream)


async def store_head(store: MessageStore) -> int:
    """The store's last global position (0 when empty): a primary-key lookup."""
    async with store.transaction(read_only=True) as tx:
        rows = await tx.execute("SELECT max(global_position) FROM messages")
    return int(rows[0][0] or 0)


async def category_lag(store: MessageStore, category_name: str, position: int | None) -> int:
    """How many messages of ``category_name`` come after global ``position`` (None: all)."""
    after = 0 if position is None else position
    async with store.transaction(read_only=True) as tx:
        if tx.dialect == "sqlite":
            sql = "SELECT count(*) FROM messages WHERE category = %s AND global_position > %s"
        else:
            # category(stream_name) is how Message DB's messages_category index is keyed.
            sql = (
                "SELECT count(*) FROM message_store.messages "
                "WHERE message_store.category(stream_name) = %s AND global_position > %s"
            )
        rows = await tx.execute(sql, (category_name, after))
    return int(rows[0][0])
