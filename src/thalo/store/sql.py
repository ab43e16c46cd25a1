"""Small pieces of SQL text shared by the backends and thalo's own-tables seam."""

from __future__ import annotations

__all__ = ["CONDITION_HINT", "to_qmark"]

import re

_PLACEHOLDER = re.compile(r"%(%|s)")

# Appended to Message DB's "Retrieval with SQL condition is not activated", on both backends.
CONDITION_HINT = (
    ": open the store with sql_condition=True (on PostgreSQL this sets "
    "message_store.sql_condition=on for thalo's connections)"
)


def to_qmark(sql: str) -> str:
    """psycopg's ``%s`` / ``%%`` placeholders → sqlite3's ``?`` / ``%``."""
    return _PLACEHOLDER.sub(lambda m: "?" if m.group(1) == "s" else "%", sql)
