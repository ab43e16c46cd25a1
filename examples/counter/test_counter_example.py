"""Unit tests of Counter, natively (no wasm): given events, when a command, then events."""

from __future__ import annotations

from counter import Counter
from counter_schema import Decremented, Incremented

from thalo.sdk.testing import AggregateTest


def test_increment_and_decrement_carry_the_new_count() -> None:
    test = AggregateTest(Counter).given(Incremented(amount=5, count=5))
    test.when("increment", {"amount": 2}).then(Incremented(amount=2, count=7))
    test.when("decrement", {"amount": 10}).then(Decremented(amount=10, count=-3))
    assert test.state.count == -3


def test_amounts_must_be_positive() -> None:
    AggregateTest(Counter).when("increment", {"amount": 0}).then_rejected("positive")
    AggregateTest(Counter).when("decrement", {"amount": -1}).then_rejected("positive")


def test_a_redelivered_command_is_ignored() -> None:
    test = AggregateTest(Counter)
    test.when("increment", {"amount": 1}, position=7).then(
        Incremented(amount=1, count=1, sequence=7)
    )
    test.when("increment", {"amount": 1}, position=7).then_ignored()
    test.when("decrement", {"amount": 1}, position=8).then(
        Decremented(amount=1, count=0, sequence=8)
    )


def test_snapshot_round_trip() -> None:
    test = AggregateTest(Counter).given(Incremented(amount=5, count=5, sequence=3))
    restored = test.restored()
    assert (restored.count, restored.sequence) == (5, 3)
