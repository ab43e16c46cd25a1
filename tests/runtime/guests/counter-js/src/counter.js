// The Counter in plain JavaScript (no types, no config): the build's defaults find the
// schema (the only .esdl), this file (src/<schema stem>.js) and the class (the ESDL name).
import { Rejected } from "@thalo/sdk";
import { CounterBase, Decremented, Incremented } from "./counter_schema.js";

export class Counter extends CounterBase {
  count = 0;
  sequence = null;

  handleIncrement(ctx, { amount }) {
    ctx.ignoreIfProcessed(this.sequence);
    if (amount <= 0) throw new Rejected(`amount must be positive, got ${amount}`);
    return Incremented({ amount, count: this.count + amount, sequence: ctx.position });
  }

  handleDecrement(ctx, { amount }) {
    ctx.ignoreIfProcessed(this.sequence);
    if (amount <= 0) throw new Rejected(`amount must be positive, got ${amount}`);
    return Decremented({ amount, count: this.count - amount, sequence: ctx.position });
  }

  applyIncremented(event) {
    this.count = event.count;
    this.sequence = event.sequence ?? this.sequence;
  }

  applyDecremented(event) {
    this.count = event.count;
    this.sequence = event.sequence ?? this.sequence;
  }
}
