// Unit tests of Counter under Node (no wasm): given events, when a command, then events.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AggregateTest } from "@thalo/sdk/testing";
import { Counter } from "../src/counter.js";
import { Decremented, Incremented } from "../src/counter_schema.js";

test("increment and decrement carry the new count", () => {
  const t = new AggregateTest(Counter).given(Incremented({ amount: 5, count: 5 }));
  t.when("increment", { amount: 2 }).then(Incremented({ amount: 2, count: 7 }));
  t.when("decrement", { amount: 10 }).then(Decremented({ amount: 10, count: -3 }));
  assert.equal(t.state.count, -3);
});

test("amounts must be positive", () => {
  new AggregateTest(Counter).when("increment", { amount: 0 }).thenRejected("positive");
  new AggregateTest(Counter).when("decrement", { amount: -1 }).thenRejected("positive");
});

test("a redelivered command is ignored", () => {
  const t = new AggregateTest(Counter);
  t.when("increment", { amount: 1 }, { position: 7 }).then(Incremented({ amount: 1, count: 1, sequence: 7 }));
  t.when("increment", { amount: 1 }, { position: 7 }).thenIgnored();
  t.when("decrement", { amount: 1 }, { position: 8 }).then(Decremented({ amount: 1, count: 0, sequence: 8 }));
});

test("payloads are validated against the schema, as the runtime does", () => {
  assert.throws(() => new AggregateTest(Counter).when("increment", { amount: "3" }), /\$\.amount: expected Int/);
  assert.throws(() => new AggregateTest(Counter).when("increment", { amount: 2 ** 31 }), /out of range for Int/);
});

test("snapshot round trip", () => {
  const restored = new AggregateTest(Counter).given(Incremented({ amount: 5, count: 5, sequence: 3 })).restored();
  assert.deepEqual([restored.count, restored.sequence], [5, 3]);
});
