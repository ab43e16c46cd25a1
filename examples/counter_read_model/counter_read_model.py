"""The counter read model: each counter's count in a table, exactly once.

``counters(id TEXT PRIMARY KEY, count INTEGER)`` lives in the store's own
database (the SQLite file, or the Message DB database's ``thalo`` schema).
Each event adds or subtracts its ``amount``, so an event applied twice (or
lost) would show in the table: thalo commits the row and the consumer's
position in one transaction, which makes that impossible.

Run it with::

    thalo projection run examples/counter_read_model/counter_read_model.py:counters
"""

from __future__ import annotations

from thalo.consumer import ReadModel
from thalo.core import Message, get_id
from thalo.store import SqlTransaction

counters = ReadModel("counters", "counter")


@counters.setup
async def create_table(tx: SqlTransaction) -> None:
    await tx.execute("CREATE TABLE IF NOT EXISTS counters (id TEXT PRIMARY KEY, count INTEGER)")


@counters.reset
async def clear(tx: SqlTransaction) -> None:
    await tx.execute("DELETE FROM counters")


async def _add(tx: SqlTransaction, message: Message, amount: int) -> None:
    await tx.execute(
        "INSERT INTO counters (id, count) VALUES (%s, %s) "
        "ON CONFLICT (id) DO UPDATE SET count = counters.count + excluded.count",
        (get_id(message.stream_name), amount),
    )


@counters.on("Incremented")
async def incremented(message: Message, tx: SqlTransaction) -> None:
    await _add(tx, message, int(message.data["amount"]))


@counters.on("Decremented")
async def decremented(message: Message, tx: SqlTransaction) -> None:
    await _add(tx, message, -int(message.data["amount"]))
