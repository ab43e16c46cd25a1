"""What changed between two versions of an aggregate's schema, and whether stored events
still read: the field-level diff of ``thalo esdl diff`` and of the check at publish.

Pure: it compares two ``Schema`` values. Whether a removed event type matters
depends on the store (an event type never stored can go); the registry's
compatibility check (thalo.registry.compatibility) asks the store about those.
"""

from __future__ import annotations

__all__ = ["Change", "SchemaDiff", "diff_schemas"]

import re
from dataclasses import dataclass, field
from typing import Any

from thalo.esdl.model import Declaration, Field, Schema, TypeRef

# Old values that the new scalar accepts unchanged (JSON integers are valid doubles).
_WIDENINGS = frozenset({("Int", "Long"), ("Int", "Double"), ("Float", "Double")})


@dataclass(frozen=True, slots=True)
class Change:
    """One difference. ``path`` names it (``DepositedFunds.memo``, ``event ClosedAccount``,
    ``command close_account``); ``what`` says it in words.

    ``breaking``: events stored under the old schema may not read under the new one.
    ``event`` is the event type concerned (None for commands). ``covered`` says how
    the new schema upcasts old events past a breaking change (``None``: it does not),
    ``if_stored``: breaking only if events of that type are in the store.
    """

    path: str
    what: str
    breaking: bool = False
    event: str | None = None
    covered: str | None = None
    if_stored: bool = False

    @property
    def refused(self) -> bool:
        """Breaking and not covered by upcasting (the store may still clear ``if_stored``)."""
        return self.breaking and self.covered is None

    def render(self) -> str:
        mark = "!" if self.refused else ("~" if self.breaking else " ")
        line = f"{mark} {self.path}: {self.what}"
        if self.breaking and self.covered is not None:
            line += f" (upcast: {self.covered})"
        elif self.refused:
            line += " — BREAKING" + (" if stored" if self.if_stored else "")
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.what,
            "breaking": self.breaking,
            "event": self.event,
            "covered": self.covered,
            "if_stored": self.if_stored,
            "refused": self.refused,
        }


@dataclass(frozen=True, slots=True)
class SchemaDiff:
    """Every change from ``old`` to ``new`` (versions of one aggregate), in schema order."""

    aggregate: str
    old_version: str
    new_version: str
    changes: tuple[Change, ...] = field(default=())

    @property
    def breaking(self) -> tuple[Change, ...]:
        """Breaking changes that upcasting does not cover (some only if their type is stored)."""
        return tuple(c for c in self.changes if c.refused)

    def render(self) -> str:
        head = f"{self.aggregate} {self.old_version} -> {self.new_version}"
        if not self.changes:
            return f"{head}: no changes"
        return "\n".join([head, *(f"  {c.render()}" for c in self.changes)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "aggregate": self.aggregate,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "changes": [c.to_dict() for c in self.changes],
            "breaking": bool(self.breaking),
        }


def diff_schemas(old: Schema, new: Schema) -> SchemaDiff:
    """The changes from ``old`` to ``new``: events (field by field, through custom types),
    then commands. See docs/esdl.md ("Evolving a schema") for what is breaking."""
    changes: list[Change] = []
    for name, decl in new.events.items():
        before = old.events.get(name)
        if before is None:
            changes.append(Change(f"event {name}", "added", event=name))
        else:
            changes.extend(diff_event(before, decl, old, new))
    for name in old.events:
        if name not in new.events:
            changes.append(
                Change(f"event {name}", "removed", breaking=True, event=name, if_stored=True)
            )
    changes.extend(_diff_commands(old, new))
    return SchemaDiff(new.name, old.version, new.version, tuple(changes))


def diff_event(before: Declaration, after: Declaration, old: Schema, new: Schema) -> list[Change]:
    """The changes of one event type; breaking ones say whether upcasting covers them."""
    name = after.name
    bumped = after.version > before.version
    changes: list[Change] = []
    if after.version != before.version:
        lowered = after.version < before.version
        changes.append(
            Change(
                f"event {name}",
                f"schema version {before.version} -> {after.version}"
                + (" (a version never goes down)" if lowered else ""),
                breaking=lowered,
                event=name,
            )
        )
    for change in _diff_fields(name, before.fields, after.fields, old, new, top=True):
        if not change.breaking:
            changes.append(change)
            continue
        top = re.split(r"[.\[]", change.path[len(name) + 1 :])[0]
        item = after.field_named(top)
        fills = (
            item is not None
            and item.default is not None
            and change.path == f"{name}.{top}"
            and change.what.startswith(("added", "now required"))
        )
        if bumped and fills:
            how = f"the default fills events of version < {after.version}"
            changes.append(_covered(change, how))
        elif bumped:
            how = f"the module's upcast hook, for events of version < {after.version}"
            changes.append(_covered(change, how))
        elif fills:
            hint = f"bump to `event {name} version {before.version + 1}` so the default applies"
            changes.append(_hint(change, hint))
        else:
            changes.append(change)
    return changes


def _covered(change: Change, how: str) -> Change:
    return Change(change.path, change.what, True, change.event, how, change.if_stored)


def _hint(change: Change, hint: str) -> Change:
    return Change(change.path, f"{change.what}; {hint}", True, change.event, None, change.if_stored)


def _diff_fields(
    event: str,
    before: tuple[Field, ...],
    after: tuple[Field, ...],
    old: Schema,
    new: Schema,
    *,
    prefix: str = "",
    top: bool = False,
    seen: frozenset[str] = frozenset(),
) -> list[Change]:
    """Field changes under ``prefix`` (``Event.`` or ``Event.field.``), recursing into
    custom types that keep their name."""
    prefix = prefix or f"{event}."
    old_by_name = {f.name: f for f in before}
    changes: list[Change] = []
    for item in after:
        path = prefix + item.name
        was = old_by_name.get(item.name)
        if was is None:
            required = not item.type.optional
            default = f" = {item.default}" if top and item.default is not None else ""
            changes.append(
                Change(
                    path,
                    f"added, {'required' if required else 'optional'} ({item.type}{default})",
                    breaking=required,
                    event=event,
                )
            )
            continue
        changes.extend(_diff_type(event, path, was.type, item.type, old, new, seen))
    for item in before:
        if item.name not in {f.name for f in after}:
            required = not item.type.optional
            changes.append(
                Change(
                    prefix + item.name,
                    f"removed ({'required' if required else 'optional'}, {item.type})",
                    breaking=required,
                    event=event,
                )
            )
    return changes


def _diff_type(
    event: str,
    path: str,
    was: TypeRef,
    now: TypeRef,
    old: Schema,
    new: Schema,
    seen: frozenset[str],
) -> list[Change]:
    """How a value of type ``was`` fares as a ``now``: optionality, then the type itself."""
    changes: list[Change] = []
    if was.optional and not now.optional:
        changes.append(Change(path, f"now required ({was} -> {now})", breaking=True, event=event))
    elif now.optional and not was.optional:
        changes.append(Change(path, f"now optional ({was} -> {now})", event=event))
    inner_was, inner_now = was.required(), now.required()
    if inner_was.item is not None and inner_now.item is not None:
        item_changes = _diff_type(
            event, f"{path}[]", inner_was.item, inner_now.item, old, new, seen
        )
        changes.extend(item_changes)
        return changes
    if inner_was.item is not None or inner_now.item is not None or inner_was.name != inner_now.name:
        if (inner_was.name, inner_now.name) in _WIDENINGS:
            changes.append(Change(path, f"widened ({was} -> {now})", event=event))
        else:
            changes.append(Change(path, f"retyped ({was} -> {now})", breaking=True, event=event))
        return changes
    name = inner_now.name
    if name is not None and inner_now.is_custom and name not in seen:
        before, after = old.types.get(name), new.types.get(name)
        if before is not None and after is not None:
            changes.extend(
                _diff_fields(
                    event,
                    before.fields,
                    after.fields,
                    old,
                    new,
                    prefix=f"{path}.",
                    seen=seen | {name},
                )
            )
    return changes


def _diff_commands(old: Schema, new: Schema) -> list[Change]:
    """Command changes: never breaking for stored events (commands are not replayed)."""
    changes: list[Change] = []
    for name, command in new.commands.items():
        before = old.commands.get(name)
        if before is None:
            changes.append(Change(f"command {name}", "added"))
            continue
        params_before = ", ".join(f"{p.name}: {p.type}" for p in before.params)
        params_after = ", ".join(f"{p.name}: {p.type}" for p in command.params)
        if params_before != params_after:
            changes.append(
                Change(f"command {name}", f"parameters ({params_before}) -> ({params_after})")
            )
        if before.events != command.events or before.event_set != command.event_set:
            changes.append(Change(f"command {name}", "produces other events"))
    for name in old.commands:
        if name not in new.commands:
            changes.append(Change(f"command {name}", "removed"))
    return changes
