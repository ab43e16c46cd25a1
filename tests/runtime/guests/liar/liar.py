"""Returns events whose data the schema forbids (an Int field holding text).

It counts the events applied to it, so a test can tell whether events the host
refused ever reached its state.
"""

from __future__ import annotations

from liar_schema import LiarBase, Said

from thalo.sdk import Context


class Liar(LiarBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.applied = 0

    def handle_lie(self, ctx: Context, count: int) -> Said:
        return Said(count=f"{count} (text, not an Int)")  # type: ignore[arg-type]

    def handle_tell(self, ctx: Context, count: int) -> Said:
        return Said(count=self.applied)

    def apply_said(self, event: Said) -> None:
        self.applied += 1
