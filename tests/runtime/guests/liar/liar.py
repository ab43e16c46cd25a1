"""Returns events whose data the schema forbids (an Int field holding text)."""

from __future__ import annotations

from liar_schema import LiarBase, Said

from thalo.sdk import Context


class Liar(LiarBase):
    def handle_lie(self, ctx: Context, count: int) -> Said:
        return Said(count=f"{count} (text, not an Int)")  # type: ignore[arg-type]

    def handle_tell(self, ctx: Context, count: int) -> Said:
        return Said(count=count)

    def apply_said(self, event: Said) -> None:
        pass
