"""Events stored by an older schema, brought up to date before the guest applies them.

Each event type has a schema version in the ESDL (``event E version 2``), recorded
as ``schemaVersion`` in the metadata of every event written. Replaying an event
stored at a lower version fills the fields that have ESDL defaults and tells the
guest the stored version, so that its ``upcast`` hook can do the rest. Types at
version 1 are never looked at, and events at their type's version pass untouched.
"""

from __future__ import annotations

__all__ = ["Upcaster"]

import orjson

from thalo.core import metadata as keys
from thalo.core.metadata import stored_version
from thalo.esdl import Schema


class Upcaster:
    """One module's event versions: what to record on writes, how to upcast on replays."""

    __slots__ = ("_declarations", "_filled", "_markers", "current", "written")

    def __init__(self, schema: Schema) -> None:
        # What every event written records as its ``schemaVersion`` (a string, as
        # Message DB's conventions have it).
        self.written: dict[str, str] = {n: str(d.version) for n, d in schema.events.items()}
        # Types past version 1: only their stored events may need upcasting.
        self.current: dict[str, int] = {
            n: d.version for n, d in schema.events.items() if d.version > 1
        }
        self._declarations = schema.events
        # How the metadata text of an event at the current version says so: as thalo
        # writes it (SQLite keeps the text) and as PostgreSQL's jsonb prints it. A
        # substring test spares parsing the metadata of every current event; only a
        # nested object of the caller's with that very key and value could fool it.
        self._markers: dict[str, tuple[str, str]] = {
            n: (f'"{keys.SCHEMA_VERSION}":"{v}"', f'"{keys.SCHEMA_VERSION}": "{v}"')
            for n, v in self.current.items()
        }
        # Types with defaults to fill (the others' data passes as stored).
        self._filled = frozenset(
            n for n in self.current if any(f.default is not None for f in schema.events[n].fields)
        )

    def upcast(self, event_type: str, data: str, metadata: str | None) -> tuple[bytes, int] | None:
        """``(data JSON, stored version)`` for an event of a type in ``current`` stored at
        a lower version, its defaults filled; ``None`` when it is current already."""
        if metadata is not None:
            compact, spaced = self._markers[event_type]
            if compact in metadata or spaced in metadata:
                return None
        stored = stored_version(metadata)
        if stored >= self.current[event_type]:
            return None
        if event_type not in self._filled:
            return data.encode(), stored
        body = self._declarations[event_type].with_defaults(orjson.loads(data))
        return orjson.dumps(body), stored
