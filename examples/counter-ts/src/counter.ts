// The Counter aggregate: decide in handle*, change state only in apply*.
import { Context, Rejected } from "@thalo/sdk";
import {
  CounterBase,
  Decremented,
  Incremented,
  type DecrementCommand,
  type IncrementCommand,
} from "./counter_schema.js";

export class Counter extends CounterBase {
  count = 0;
  // Position of the last command applied; a redelivered command at or before it is
  // ignored (idempotency for commands that come through a command stream).
  sequence: number | null = null;

  handleIncrement(ctx: Context, { amount }: IncrementCommand) {
    ctx.ignoreIfProcessed(this.sequence);
    if (amount <= 0) throw new Rejected(`amount must be positive, got ${amount}`);
    return Incremented({ amount, count: this.count + amount, sequence: ctx.position });
  }

  handleDecrement(ctx: Context, { amount }: DecrementCommand) {
    ctx.ignoreIfProcessed(this.sequence);
    if (amount <= 0) throw new Rejected(`amount must be positive, got ${amount}`);
    return Decremented({ amount, count: this.count - amount, sequence: ctx.position });
  }

  applyIncremented(event: Incremented) {
    this.count = event.count;
    this.sequence = event.sequence ?? this.sequence;
  }

  applyDecremented(event: Decremented) {
    this.count = event.count;
    this.sequence = event.sequence ?? this.sequence;
  }
}
