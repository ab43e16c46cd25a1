"""The bank_account workload written for the Python `eventsourcing` library (the baseline)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError


class Account(Aggregate):  # type: ignore[misc]
    @event("Opened")
    def __init__(self, initial_balance: int) -> None:
        self.balance = initial_balance

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        self.balance += amount

    @event("Withdrew")
    def _withdrew(self, amount: int) -> None:
        self.balance -= amount

    def withdraw(self, amount: int) -> None:
        if amount > self.balance:
            raise ValueError("insufficient funds")
        self._withdrew(amount)


class Bank(Application):  # type: ignore[misc]
    def open(self, balance: int) -> Any:
        account = Account(balance)
        self.save(account)
        return account.id

    def command(self, account_id: Any, command: str, amount: int) -> None:
        # Two callers on one account conflict on its version: reload and retry, as
        # thalo's runtime does after a concurrency error.
        while True:
            account = self.repository.get(account_id)
            if command == "deposit_funds":
                account.deposit(amount)
            else:
                account.withdraw(amount)
            try:
                self.save(account)
                return
            except IntegrityError:
                continue


def run(env: dict[str, str], accounts: int, ops: list[tuple[int, str, int]], callers: int) -> float:
    """Commands/s: open ``accounts``, then apply ``ops``, with ``callers`` threads."""
    app = Bank(env=env)
    ids: list[Any] = [None] * accounts
    lock = threading.Lock()
    started = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:

        def open_one(i: int) -> None:
            account_id = app.open(1000)
            with lock:
                ids[i] = account_id

        list(pool.map(open_one, range(accounts)))
        list(pool.map(lambda op: app.command(ids[op[0]], op[1], op[2]), ops))
    elapsed = time.perf_counter() - started
    app.close()
    return (accounts + len(ops)) / elapsed
