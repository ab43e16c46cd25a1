"""An aggregate that abuses the host's budgets on request (issue 11).

``burn`` spends CPU in ``apply``, ``bulk`` stores big events, ``hold`` keeps memory
in the entity's state (rebuilt on replay), ``hog`` allocates while deciding,
``roll`` draws ``random`` in ``apply``, ``pick`` in ``handle``, ``flood`` logs.
"""

from __future__ import annotations

import random

from hostile_schema import (
    Bulk,
    Burned,
    Flooded,
    Greeted,
    Held,
    HostileBase,
    Picked,
    Rolled,
)

from thalo.sdk import Context
from thalo.sdk import log as thalo_log


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
        self.burned = 0
        self.bulk = 0
        self.held = 0
        self.rolls: list[float] = []
        self._blobs: list[str] = []
        self._kept: list[bytearray] = []

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

    def apply_burned(self, event: Burned) -> None:
        self.burned += 1 + _spin(event.loops) * 0

    def apply_bulk(self, event: Bulk) -> None:
        self._blobs.append(event.blob)
        self.bulk += 1

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
