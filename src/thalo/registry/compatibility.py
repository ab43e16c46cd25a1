"""The compatibility check at publish: may a new version of an aggregate read the events
the store holds?

It needs only the new ESDL, the registry's published schemas and the store (no
build), so it runs before a component is built or loaded. The field-level diff
is ``thalo.esdl.diff``; this module picks what to compare with and asks the
store whether removed event types were ever written (docs/design.md, "Versions").
"""

from __future__ import annotations

__all__ = ["Compatibility", "check_compatibility", "stored_event_types"]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from thalo.core import aggregate_category
from thalo.errors import IncompatibleSchema
from thalo.esdl import Schema
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


@dataclass(frozen=True, slots=True)
class Compatibility:
    """The outcome: the diff against the newest published version (``None`` when there is
    none, or this very version is published already) with the store's answers applied."""

    diff: SchemaDiff | None

    @property
    def refused(self) -> tuple[Change, ...]:
        """The breaking changes nothing upcasts: a publish refuses them."""
        return self.diff.breaking if self.diff is not None else ()

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
