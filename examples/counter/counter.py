"""The Counter aggregate: decide in ``handle_*``, change state only in ``apply_*``."""

from __future__ import annotations

from counter_schema import CounterBase, Decremented, Incremented

from thalo.sdk import Context, Rejected


class Counter(CounterBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.count = 0
        # Position of the last command applied; a redelivered command at or before
        # it is ignored (idempotency for commands that come through a command stream).
        self.sequence: int | None = None

    def handle_increment(self, ctx: Context, amount: int) -> Incremented:
        ctx.ignore_if_processed(self.sequence)
        if amount <= 0:
            raise Rejected(f"amount must be positive, got {amount}")
        return Incremented(amount=amount, count=self.count + amount, sequence=ctx.position)

    def handle_decrement(self, ctx: Context, amount: int) -> Decremented:
        ctx.ignore_if_processed(self.sequence)
        if amount <= 0:
            raise Rejected(f"amount must be positive, got {amount}")
        return Decremented(amount=amount, count=self.count - amount, sequence=ctx.position)

    def apply_incremented(self, event: Incremented) -> None:
        self.count = event.count
        self.sequence = event.sequence if event.sequence is not None else self.sequence

    def apply_decremented(self, event: Decremented) -> None:
        self.count = event.count
        self.sequence = event.sequence if event.sequence is not None else self.sequence
