// Unit tests of BankAccount under Node (no wasm).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AggregateTest } from "@thalo/sdk/testing";
import { BankAccount } from "../src/bank_account.js";
import { ClosedAccount, DepositedFunds, OpenedAccount, WithdrewFunds } from "../src/bank_account_schema.js";

const opened = (balance = 100) => new AggregateTest(BankAccount).given(OpenedAccount({ initial_balance: balance }));

test("open, deposit, withdraw, close", () => {
  const t = new AggregateTest(BankAccount);
  t.when("open_account", { initial_balance: 10 }).then(OpenedAccount({ initial_balance: 10 }));
  t.when("deposit_funds", { amount: 5 }).then(DepositedFunds({ amount: 5, balance: 15 }));
  t.when("withdraw_funds", { amount: 15 }).then(WithdrewFunds({ amount: 15, balance: 0 }));
  t.when("close_account", {}).then(ClosedAccount({}));
  assert.equal(t.state.closed, true);
});

test("no overdraft", () => {
  opened(10).when("withdraw_funds", { amount: 11 }).thenRejected("insufficient funds");
});

for (const command of ["deposit_funds", "withdraw_funds"]) {
  test(`${command}: amounts must be positive`, () => {
    opened().when(command, { amount: 0 }).thenRejected("positive");
    opened().when(command, { amount: -5 }).thenRejected("positive");
  });
}

test("a negative initial balance is refused", () => {
  new AggregateTest(BankAccount).when("open_account", { initial_balance: -1 }).thenRejected("negative");
});

test("an unopened account refuses everything", () => {
  for (const [command, payload] of [
    ["deposit_funds", { amount: 1 }],
    ["withdraw_funds", { amount: 1 }],
    ["close_account", {}],
  ] as const) {
    new AggregateTest(BankAccount).when(command, payload).thenRejected("not open");
  }
});

test("a closed account refuses everything", () => {
  const t = opened(0).given(ClosedAccount({}));
  t.when("deposit_funds", { amount: 1 }).thenRejected("closed");
  t.when("open_account", { initial_balance: 1 }).thenRejected("already open");
});

test("close only at zero balance", () => {
  opened(1).when("close_account", {}).thenRejected("zero balance");
});

test("a payload that breaks the schema is refused like the runtime does", () => {
  assert.throws(() => opened().when("deposit_funds", { amount: 1, memo: "x" }), /\$\.memo: unknown field/);
});

test("snapshot round trip", () => {
  const restored = opened(42).given(DepositedFunds({ amount: 8, balance: 50 })).restored();
  assert.deepEqual([restored.opened, restored.closed, restored.balance], [true, false, 50]);
});
