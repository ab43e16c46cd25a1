"""The hostile guest of issue 11: it misbehaves on request, one command per fault.

Budgets and memory:
- ``burn(loops)`` spends CPU in ``apply`` (every replay pays it again);
- ``dawdle(rounds)`` computes ``rounds`` × 100,000 loop turns while deciding, then
  notes it: a slow command that succeeds (the guest has no clock), or, given
  enough rounds, one that runs out of time;
- ``bulk(megabytes)`` stores big events (counted, not kept); ``hold(megabytes)``
  keeps memory in the entity's state, allocated again on every replay;
  ``hog(megabytes)`` allocates while deciding and keeps it;
- ``roll`` draws ``random`` in ``apply``, ``pick`` in ``handle``;
- ``flood(lines, kilobytes)`` logs.

Output the host cannot use:
- ``overflow`` applies a ``Measured`` whose Double is infinite: JSON cannot
  carry it, so the host cannot decode the events the guest already applied;
- ``note`` with text ``odd:list`` / ``odd:object`` / ``odd:data`` comes back
  with an event ``type`` that is a JSON list or object, or ``data`` that is a list;
- ``arm(mode)`` sets how snapshots go from then on: ``raise`` or ``loop`` in
  ``to_snapshot``, ``bad-json`` (the snapshot text is not JSON), ``restore-trap``
  or ``restore-loop`` in ``from_snapshot``; ``ok`` is the default.

The state counts what was applied (``notes``: 1 per note, 1000 per measurement),
so a test can tell whether an event that never reached the store stayed applied.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hostile_schema import (
    Armed,
    Bulk,
    Burned,
    Flooded,
    Greeted,
    Held,
    HostileBase,
    Measured,
    Noted,
    Picked,
    Rolled,
)

from thalo.sdk import Context
from thalo.sdk import log as thalo_log
from thalo.sdk._dispatch import EntityCore

_TWISTS: dict[str, Any] = {
    "odd:list": ("type", ["Noted"]),
    "odd:object": ("type", {"Noted": True}),
    "odd:data": ("data", [1, 2, 3]),
}


def _twisted(text: str) -> str:
    if "odd:" not in text:
        return text
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


def _spin(loops: int) -> int:
    total = 0
    for i in range(loops):
        total += i
    return total


def _megabytes(count: int) -> list[bytearray]:
    chunks = []
    for _ in range(count):
        chunk = bytearray(1 << 20)
        for i in range(0, len(chunk), 4096):
            chunk[i] = 1  # touch every page
        chunks.append(chunk)
    return chunks


class Hostile(HostileBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.notes = 0
        self.mode = "ok"
        self.burned = 0
        self.bulk = 0
        self.held = 0
        self.rolls: list[float] = []
        self._kept: list[bytearray] = []

    def handle_note(self, ctx: Context, text: str) -> Noted:
        return Noted(text=text)

    def handle_overflow(self, ctx: Context) -> Measured:
        return Measured(value=float("inf"))

    def handle_arm(self, ctx: Context, mode: str) -> Armed:
        return Armed(mode=mode)

    def handle_dawdle(self, ctx: Context, rounds: int) -> Noted:
        total = 0
        for turn in range(rounds * 100_000):
            total += turn & 7
        return Noted(text=f"dawdled {rounds} rounds ({total})")

    def handle_burn(self, ctx: Context, loops: int) -> Burned:
        return Burned(loops=loops)

    def handle_bulk(self, ctx: Context, megabytes: int) -> Bulk:
        return Bulk(blob="x" * (megabytes << 20))

    def handle_hold(self, ctx: Context, megabytes: int) -> Held:
        return Held(megabytes=megabytes)

    def handle_hog(self, ctx: Context, megabytes: int) -> Held:
        self._kept.extend(_megabytes(megabytes))
        return Held(megabytes=0)

    def handle_roll(self, ctx: Context) -> Rolled:
        return Rolled(note="roll")

    def handle_pick(self, ctx: Context) -> Picked:
        return Picked(value=random.random())

    def handle_flood(self, ctx: Context, lines: int, kilobytes: int) -> Flooded:
        line = "f" * (kilobytes << 10)
        for _ in range(lines):
            thalo_log("info", line)
        return Flooded(lines=lines)

    def handle_greet(self, ctx: Context) -> Greeted:
        return Greeted(note="hello")

    def apply_noted(self, event: Noted) -> None:
        self.notes += 1

    def apply_measured(self, event: Measured) -> None:
        self.notes += 1000

    def apply_armed(self, event: Armed) -> None:
        self.mode = event.mode

    def apply_burned(self, event: Burned) -> None:
        self.burned += 1 + _spin(event.loops) * 0

    def apply_bulk(self, event: Bulk) -> None:
        self.bulk += len(event.blob) >> 20

    def apply_held(self, event: Held) -> None:
        self._kept.extend(_megabytes(event.megabytes))
        self.held += event.megabytes

    def apply_rolled(self, event: Rolled) -> None:
        self.rolls.append(random.random())

    def apply_picked(self, event: Picked) -> None:
        pass

    def apply_flooded(self, event: Flooded) -> None:
        pass

    def apply_greeted(self, event: Greeted) -> None:
        pass

    def to_snapshot(self) -> dict[str, Any]:
        if self.mode == "raise":
            raise RuntimeError("this snapshot is refused")
        if self.mode == "loop":
            while True:
                pass
        return super().to_snapshot()

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Hostile:
        if state.get("mode") == "restore-trap":
            raise RuntimeError("this snapshot cannot be restored")
        if state.get("mode") == "restore-loop":
            while True:
                pass
        return super().from_snapshot(id, state)
