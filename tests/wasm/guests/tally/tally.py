"""A counter aggregate: increments by a positive amount, resets, ignores redeliveries."""

from __future__ import annotations

from tally_schema import CounterBase, Incremented, Reset

from thalo.sdk import Context, Rejected


class Counter(CounterBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.count = 0
        self.sequence: int | None = None

    def handle_increment(self, ctx: Context, amount: int) -> Incremented:
        ctx.ignore_if_processed(self.sequence)
        if amount <= 0:
            raise Rejected(f"amount must be positive, got {amount}")
        return Incremented(amount=amount, count=self.count + amount, sequence=ctx.position)

    def handle_reset(self, ctx: Context) -> Reset | None:
        ctx.ignore_if_processed(self.sequence)
        if self.count == 0:
            return None
        return Reset(sequence=ctx.position)

    def apply_incremented(self, event: Incremented) -> None:
        self.count = event.count
        if event.sequence is not None:
            self.sequence = event.sequence

    def apply_reset(self, event: Reset) -> None:
        self.count = 0
        if event.sequence is not None:
            self.sequence = event.sequence
