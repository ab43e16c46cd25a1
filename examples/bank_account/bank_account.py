"""The BankAccount aggregate: no overdrafts, no business on unopened or closed accounts."""

from __future__ import annotations

from bank_account_schema import (
    BankAccountBase,
    ClosedAccount,
    DepositedFunds,
    OpenedAccount,
    WithdrewFunds,
)

from thalo.sdk import Context, Rejected


class BankAccount(BankAccountBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.opened = False
        self.closed = False
        self.balance = 0

    def _require_open(self) -> None:
        if not self.opened:
            raise Rejected("the account is not open")
        if self.closed:
            raise Rejected("the account is closed")

    @staticmethod
    def _require_positive(amount: int) -> None:
        if amount <= 0:
            raise Rejected(f"amount must be positive, got {amount}")

    def handle_open_account(self, ctx: Context, initial_balance: int) -> OpenedAccount:
        if self.opened:
            raise Rejected("the account is already open")
        if initial_balance < 0:
            raise Rejected(f"the initial balance must not be negative, got {initial_balance}")
        return OpenedAccount(initial_balance=initial_balance)

    def handle_deposit_funds(self, ctx: Context, amount: int) -> DepositedFunds:
        self._require_open()
        self._require_positive(amount)
        return DepositedFunds(amount=amount, balance=self.balance + amount)

    def handle_withdraw_funds(self, ctx: Context, amount: int) -> WithdrewFunds:
        self._require_open()
        self._require_positive(amount)
        if amount > self.balance:
            raise Rejected(f"insufficient funds: balance {self.balance}, withdrawal {amount}")
        return WithdrewFunds(amount=amount, balance=self.balance - amount)

    def handle_close_account(self, ctx: Context) -> ClosedAccount:
        self._require_open()
        if self.balance != 0:
            raise Rejected(
                f"only an account with a zero balance can close (balance {self.balance})"
            )
        return ClosedAccount()

    def apply_opened_account(self, event: OpenedAccount) -> None:
        self.opened = True
        self.balance = event.initial_balance

    def apply_deposited_funds(self, event: DepositedFunds) -> None:
        self.balance = event.balance

    def apply_withdrew_funds(self, event: WithdrewFunds) -> None:
        self.balance = event.balance

    def apply_closed_account(self, event: ClosedAccount) -> None:
        self.closed = True
