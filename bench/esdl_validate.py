"""ESDL payload validation speed: thalo's compiled validators against hand-written checks
measured in the same run.

For each case it prints the median cost of one validation (µs, median of --repeat
runs of --number calls), the cost of a hand-written function that checks exactly the
same rules for that one payload shape (types, 32/64-bit ranges, required fields,
unknown fields, nested objects and arrays) with no path reporting and no reuse, and
the ratio. Target (issue 3): a typical command well under 20 µs.

    python bench/esdl_validate.py [--number 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from thalo.esdl import parse

SCHEMA = parse(
    """version = "0.1.0"
aggregate BankAccount {
  deposit_funds(amount: Int) -> DepositedFunds
  transfer(amount: Long, reference: String, to: Account, note: String?) -> SentFunds
}
event DepositedFunds { amount: Int  balance: Long }
event SentFunds { amount: Long  to: Account }
type Account { id: String  owner: String  tags: [String?]? }
"""
)

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def hand_deposit(payload: Any) -> bool:
    """The minimal correct check of ``deposit_funds``, written for that shape only."""
    if type(payload) is not dict or len(payload) != 1:
        return False
    amount = payload.get("amount")
    return type(amount) is int and INT_MIN <= amount <= INT_MAX


def hand_account(value: Any) -> bool:
    if type(value) is not dict:
        return False
    known = 0
    for key in ("id", "owner"):
        if type(value.get(key)) is not str:
            return False
        known += 1
    tags = value.get("tags")
    if "tags" in value:
        known += 1
        if tags is not None:
            if type(tags) is not list:
                return False
            for tag in tags:
                if tag is not None and type(tag) is not str:
                    return False
    return known == len(value)


def hand_transfer(payload: Any) -> bool:
    """The minimal correct check of ``transfer``, written for that shape only."""
    if type(payload) is not dict:
        return False
    amount = payload.get("amount")
    if type(amount) is not int or not LONG_MIN <= amount <= LONG_MAX:
        return False
    if type(payload.get("reference")) is not str or not hand_account(payload.get("to")):
        return False
    known = 3
    if "note" in payload:
        known += 1
        note = payload["note"]
        if note is not None and type(note) is not str:
            return False
    return known == len(payload)


CASES: list[tuple[str, str, dict[str, Any], Callable[[Any], bool]]] = [
    ("deposit_funds (1 Int)", "deposit_funds", {"amount": 250}, hand_deposit),
    (
        "transfer (4 fields, nested type, array)",
        "transfer",
        {
            "amount": 1_000_000,
            "reference": "inv-42",
            "to": {"id": "acc-2", "owner": "Ada", "tags": ["vip", None, "eu"]},
            "note": None,
        },
        hand_transfer,
    ),
]


def per_call_us(function: Callable[[], object], number: int, repeat: int) -> float:
    runs = timeit.repeat(function, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    print(f"{'case':42} {'thalo µs':>9} {'hand µs':>9} {'ratio':>6}")
    for label, command, payload, hand in CASES:
        SCHEMA.validate_command(command, payload)  # compiles the validators, and must pass
        assert hand(payload), label
        ours = per_call_us(
            lambda c=command, p=payload: SCHEMA.validate_command(c, p), args.number, args.repeat
        )
        baseline = per_call_us(lambda h=hand, p=payload: h(p), args.number, args.repeat)
        print(f"{label:42} {ours:9.2f} {baseline:9.2f} {ours / baseline:6.1f}")
    compile_us = per_call_us(
        lambda: type(SCHEMA).from_json(SCHEMA.to_json())._compiled, 200, args.repeat
    )
    print(f"{'rebuild schema from JSON + compile':42} {compile_us:9.1f}")
    parse_us = per_call_us(lambda: parse(SCHEMA.to_esdl()), 200, args.repeat)
    print(f"{'parse the schema source':42} {parse_us:9.1f}")


if __name__ == "__main__":
    main()
