"""Misbehaves after the fact: output the host cannot decode, snapshots that fail.

- ``overflow`` applies a ``Measured`` whose Double is infinite: JSON cannot
  carry it, so the host cannot decode the events the guest already applied.
- ``note`` with text ``odd:list`` / ``odd:object`` / ``odd:data`` comes back
  with an event ``type`` that is a JSON list or object, or ``data`` that is a list.
- ``dawdle(rounds)`` computes ``rounds`` × 100,000 loop turns, then notes it: a
  slow command that succeeds (for shutdown tests; the guest has no clock).
- ``arm(mode)`` sets how snapshots go from then on: ``raise`` or ``loop`` in
  ``to_snapshot``, ``bad-json`` (the snapshot text is not JSON), ``restore-trap``
  or ``restore-loop`` in ``from_snapshot``; ``ok`` is the default.

The state counts what was applied (``notes``), so a test can tell whether an
event that never reached the store stayed applied.
"""

from __future__ import annotations

import json
from typing import Any

from rogue_schema import Armed, Measured, Noted, RogueBase

from thalo.sdk import Context
from thalo.sdk._dispatch import EntityCore

_TWISTS: dict[str, Any] = {
    "odd:list": ("type", ["Noted"]),
    "odd:object": ("type", {"Noted": True}),
    "odd:data": ("data", [1, 2, 3]),
}


def _twisted(text: str) -> str:
    events = json.loads(text)
    for event in events:
        twist = _TWISTS.get(str(event.get("data", {}).get("text")))
        if twist is not None:
            event[twist[0]] = twist[1]
    return json.dumps(events)


_handle, _execute, _snapshot = EntityCore.handle, EntityCore.execute, EntityCore.snapshot


def _handle_twisted(self: EntityCore, ctx: str, command: str) -> str:
    return _twisted(_handle(self, ctx, command))


def _execute_twisted(self: EntityCore, ctx: str, command: str) -> str:
    return _twisted(_execute(self, ctx, command))


def _snapshot_twisted(self: EntityCore) -> str:
    if getattr(self.aggregate, "mode", "ok") == "bad-json":
        return "{this is not JSON"
    return _snapshot(self)


EntityCore.handle = _handle_twisted  # type: ignore[method-assign]
EntityCore.execute = _execute_twisted  # type: ignore[method-assign]
EntityCore.snapshot = _snapshot_twisted  # type: ignore[method-assign]


class Rogue(RogueBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.notes = 0
        self.mode = "ok"

    def handle_note(self, ctx: Context, text: str) -> Noted:
        return Noted(text=text)

    def handle_overflow(self, ctx: Context) -> Measured:
        return Measured(value=float("inf"))

    def handle_dawdle(self, ctx: Context, rounds: int) -> Noted:
        total = 0
        for turn in range(rounds * 100_000):
            total += turn & 7
        return Noted(text=f"dawdled {rounds} rounds ({total})")

    def handle_arm(self, ctx: Context, mode: str) -> Armed:
        return Armed(mode=mode)

    def apply_noted(self, event: Noted) -> None:
        self.notes += 1

    def apply_measured(self, event: Measured) -> None:
        self.notes += 1000

    def apply_armed(self, event: Armed) -> None:
        self.mode = event.mode

    def to_snapshot(self) -> dict[str, Any]:
        if self.mode == "raise":
            raise RuntimeError("this snapshot is refused")
        if self.mode == "loop":
            while True:
                pass
        return {"notes": self.notes, "mode": self.mode}

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Rogue:
        if state.get("mode") == "restore-trap":
            raise RuntimeError("this snapshot cannot be restored")
        if state.get("mode") == "restore-loop":
            while True:
                pass
        entity = cls(id)
        entity.notes = int(state["notes"])
        entity.mode = str(state["mode"])
        return entity
