"""The compatibility check at publish: may a new version of an aggregate read the events
the store holds?

It needs only the new ESDL, the registry's published schemas and the store (no
build), so it runs before a component is built or loaded. The field-level diff
is ``thalo.esdl.diff``; this module picks what to compare with and asks the
store whether removed event types were ever written (docs/design.md, "Versions").
"""

from __future__ import annotations

__all__ = ["Compatibility", "OldEvent", "check_compatibility", "old_events", "stored_event_types"]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from thalo.core import aggregate_category
from thalo.core.metadata import stored_version
from thalo.errors import IncompatibleSchema
from thalo.esdl import Schema, TypeRef
from thalo.esdl.diff import Change, SchemaDiff, diff_event, diff_schemas
from thalo.registry.requirement import parse_version
from thalo.store import MessageStore

_STORED_SQL = {
    "sqlite": "SELECT 1 FROM messages WHERE category = %s AND type = %s LIMIT 1",
    # Message DB indexes category(stream_name); qualified, since thalo's own
    # schema comes first on the search path.
    "postgresql": (
        "SELECT 1 FROM message_store.messages "
        "WHERE message_store.category(stream_name) = %s AND type = %s LIMIT 1"
    ),
}

# The oldest events of a type: the likeliest to be of its first shapes.
_OLDEST_SQL = {
    "sqlite": (
        "SELECT data, metadata, global_position FROM messages"
        " WHERE category = %s AND type = %s ORDER BY global_position LIMIT 200"
    ),
    "postgresql": (
        "SELECT data::text, metadata::text, global_position FROM message_store.messages"
        " WHERE message_store.category(stream_name) = %s AND type = %s"
        " ORDER BY global_position LIMIT 200"
    ),
}
_SAMPLES: dict[str, Any] = {
    "String": "", "Int": 0, "Long": 0, "Float": 0.0, "Double": 0.0, "Bool": False, "Bytes": "",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Compatibility:
    """The outcome: the diff against the newest published version (``None`` when there is
    none, or this very version is published already) with the store's answers applied."""

    diff: SchemaDiff | None

    @property
    def refused(self) -> tuple[Change, ...]:
        """The breaking changes nothing upcasts: a publish refuses them."""
        return self.diff.breaking if self.diff is not None else ()

    @property
    def rendered(self) -> str | None:
        """The diff as ``thalo publish`` prints it; None when nothing changed."""
        diff = self.diff
        return diff.render() if diff is not None and diff.changes else None

    def require(self, *, allow_breaking: bool = False) -> None:
        """Raise ``IncompatibleSchema`` (exit 2, HTTP 409) for refused changes, unless allowed."""
        diff = self.diff
        if diff is None or allow_breaking or not diff.breaking:
            return
        raise IncompatibleSchema(
            diff.aggregate,
            diff.new_version,
            diff.old_version,
            tuple(c.render() for c in diff.changes),
        )


async def check_compatibility(
    store: MessageStore, schema: Schema, published: Sequence[Schema]
) -> Compatibility:
    """Compare ``schema`` with the ``published`` schemas of its aggregate and the store.

    The baseline is the newest published version; an event type it lacks but an
    older version had is compared with that older shape (stored events of it may
    remain). A removed event type is breaking only if the store holds one.
    """
    version = parse_version(schema.version)
    older = sorted(
        (s for s in published if s.name == schema.name), key=lambda s: parse_version(s.version)
    )
    if not older or any(parse_version(s.version) >= version for s in older):
        # Nothing to compare with, or the version check refuses it (or it is a republish).
        return Compatibility(None)
    newest = older[-1]
    diff = diff_schemas(newest, schema)
    changes: list[Change] = []
    for change in diff.changes:
        if change.path.startswith("event ") and change.what == "added":
            earlier = next((s for s in reversed(older) if change.event in s.events), None)
            if earlier is not None and change.event is not None:
                name = change.event
                found = diff_event(earlier.events[name], schema.events[name], earlier, schema)
                note = f"(as in {earlier.version})"
                changes.append(Change(f"event {name}", f"back {note}", event=name))
                changes.extend(found)
                continue
        changes.append(change)
    removed = {c.event for c in changes if c.if_stored and c.event is not None}
    stored = await stored_event_types(store, schema.name, removed) if removed else set()
    settled = [c if not c.if_stored else _with_store(c, c.event in stored) for c in changes]
    return Compatibility(replace(diff, changes=tuple(settled)))


def _with_store(change: Change, stored: bool) -> Change:
    what = f"{change.what} ({'events of it are stored' if stored else 'never stored'})"
    return replace(change, what=what, breaking=stored, if_stored=False)


async def stored_event_types(store: MessageStore, aggregate: str, types: Iterable[str]) -> set[str]:
    """Which of ``types`` the store holds at least one event of, in ``aggregate``'s category."""
    category = aggregate_category(aggregate)
    found: set[str] = set()
    async with store.transaction(read_only=True) as tx:
        for event_type in sorted(types):
            rows = await tx.execute(_STORED_SQL[tx.dialect], (category, event_type))
            if rows:
                found.add(event_type)
    return found


@dataclass(frozen=True, slots=True)
class OldEvent:
    """An event as an older schema stored it, as a replay hands it to the new module:
    its ESDL defaults filled in (``origin`` says where it comes from)."""

    event_type: str
    version: int
    data: dict[str, Any]
    origin: str


async def old_events(
    store: MessageStore, schema: Schema, published: Sequence[Schema]
) -> list[OldEvent]:
    """What a publish of ``schema`` replays through its module before accepting it.

    For each event type past version 1: the oldest stored event of each older version
    (among the first 200 of the type), or where the store holds none, a sample of the
    shape the newest published version with an older version of the type declared.
    """
    found: list[OldEvent] = []
    current = {n: d for n, d in schema.events.items() if d.version > 1}
    if not current:
        return found
    category = aggregate_category(schema.name)
    async with store.transaction(read_only=True) as tx:
        for name, declaration in current.items():
            rows = await tx.execute(_OLDEST_SQL[tx.dialect], (category, name))
            seen: set[int] = set()
            for data, metadata, position in rows:
                version = stored_version(None if metadata is None else str(metadata))
                if version >= declaration.version or version in seen:
                    continue
                seen.add(version)
                try:
                    body = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue  # not JSON: replay reports it, the check has nothing to add
                if isinstance(body, dict):
                    origin = f"the oldest stored, at global position {position}"
                    found.append(OldEvent(name, version, declaration.with_defaults(body), origin))
            if not seen:
                sample = _sample_of(name, declaration.version, published)
                if sample is not None:
                    found.append(replace(sample, data=declaration.with_defaults(sample.data)))
    return found


def _sample_of(name: str, below: int, published: Sequence[Schema]) -> OldEvent | None:
    """An event of ``name`` shaped as the newest published schema with it below ``below`` said."""
    for older in sorted(published, key=lambda s: parse_version(s.version), reverse=True):
        declaration = older.events.get(name)
        if declaration is not None and declaration.version < below:
            data = {f.name: _sample(f.type, older, 0) for f in declaration.fields}
            origin = f"a sample of the shape {older.version} declared; none is stored"
            return OldEvent(name, declaration.version, data, origin)
    return None


def _sample(ref: TypeRef, schema: Schema, depth: int) -> Any:
    """A value of type ``ref``: zero, empty or null, the least a field can hold."""
    if ref.optional or depth > 16:
        return None
    if ref.item is not None:
        return []
    name = ref.name or ""
    if name in _SAMPLES:
        return _SAMPLES[name]
    declaration = schema.types.get(name)
    if declaration is None:
        return None
    return {f.name: _sample(f.type, schema, depth + 1) for f in declaration.fields}
