"""Unit tests of BankAccount, natively (no wasm)."""

from __future__ import annotations

import pytest
from bank_account import BankAccount
from bank_account_schema import ClosedAccount, DepositedFunds, OpenedAccount, WithdrewFunds

from thalo.sdk.testing import AggregateTest


def opened(balance: int = 100) -> AggregateTest[BankAccount]:
    return AggregateTest(BankAccount).given(OpenedAccount(initial_balance=balance))


def test_open_deposit_withdraw_close() -> None:
    test = AggregateTest(BankAccount)
    test.when("open_account", {"initial_balance": 10}).then(OpenedAccount(initial_balance=10))
    test.when("deposit_funds", {"amount": 5}).then(DepositedFunds(amount=5, balance=15))
    test.when("withdraw_funds", {"amount": 15}).then(WithdrewFunds(amount=15, balance=0))
    test.when("close_account", {}).then(ClosedAccount())
    assert test.state.closed


def test_no_overdraft() -> None:
    opened(10).when("withdraw_funds", {"amount": 11}).then_rejected("insufficient funds")


@pytest.mark.parametrize("command", ["deposit_funds", "withdraw_funds"])
def test_amounts_must_be_positive(command: str) -> None:
    opened().when(command, {"amount": 0}).then_rejected("positive")
    opened().when(command, {"amount": -5}).then_rejected("positive")


def test_a_negative_initial_balance_is_refused() -> None:
    AggregateTest(BankAccount).when("open_account", {"initial_balance": -1}).then_rejected(
        "negative"
    )


@pytest.mark.parametrize(
    ("command", "payload"),
    [("deposit_funds", {"amount": 1}), ("withdraw_funds", {"amount": 1}), ("close_account", {})],
)
def test_unopened_account_refuses_everything(command: str, payload: dict[str, int]) -> None:
    AggregateTest(BankAccount).when(command, payload).then_rejected("not open")


def test_closed_account_refuses_everything() -> None:
    test = opened(0).given(ClosedAccount())
    test.when("deposit_funds", {"amount": 1}).then_rejected("closed")
    test.when("open_account", {"initial_balance": 1}).then_rejected("already open")


def test_close_only_at_zero_balance() -> None:
    opened(1).when("close_account", {}).then_rejected("zero balance")


def test_snapshot_round_trip() -> None:
    restored = opened(42).given(DepositedFunds(amount=8, balance=50)).restored()
    assert (restored.opened, restored.closed, restored.balance) == (True, False, 50)
