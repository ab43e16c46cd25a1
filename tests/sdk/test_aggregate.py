"""Aggregate defaults (snapshots), Context, the codec helpers and the test helper."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from tally import Counter, Incremented, Reset

from thalo.sdk import Context, Ignore, decode_bytes, encode_bytes, log
from thalo.sdk._codec import snake_case
from thalo.sdk.testing import AggregateTest


def test_default_snapshot_is_public_fields_but_id() -> None:
    counter = Counter("c-1")
    counter.count = 7
    counter._cache = object()  # type: ignore[attr-defined]
    assert counter.to_snapshot() == {"count": 7, "sequence": None}
    restored = Counter.from_snapshot("c-1", {"count": 7, "sequence": 2})
    assert (restored.id, restored.count, restored.sequence) == ("c-1", 7, 2)


@pytest.mark.parametrize(
    ("value", "where"),
    [((1, 2), "count"), ({"a": b"x"}, "count.a"), ([1, {2: 3}], "count[1]"), ({1, 2}, "count")],
)
def test_default_snapshot_refuses_what_json_would_change(value: Any, where: str) -> None:
    counter = Counter("c-1")
    counter.count = value
    with pytest.raises(TypeError, match=f"snapshot field {re.escape(where)} "):
        counter.to_snapshot()


def test_context_round_trip_and_processed() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ctx = Context(
        stream_name="tally:command-c-1",
        message_id="m-1",
        position=4,
        global_position=40,
        metadata={"correlationStreamName": "x"},
        time=when,
    )
    assert Context.from_json(ctx.to_json()) == ctx
    assert ctx.processed(4) and ctx.processed(9)
    assert not ctx.processed(3)
    assert not ctx.processed(None)
    assert not Context(stream_name="s").processed(10)
    with pytest.raises(Ignore, match="position 4 already processed"):
        ctx.ignore_if_processed(5)
    ctx.ignore_if_processed(3)


def test_bytes_codec() -> None:
    assert decode_bytes(encode_bytes(b"\x00\xffhi")) == b"\x00\xffhi"
    with pytest.raises(ValueError, match="invalid base64"):
        decode_bytes("!!!")
    with pytest.raises(ValueError, match="expected base64 text"):
        decode_bytes(3)  # type: ignore[arg-type]


def test_snake_case() -> None:
    assert snake_case("OpenedAccount") == "opened_account"
    assert snake_case("HTTPRequestSent") == "http_request_sent"
    assert snake_case("increment") == "increment"


def test_log_goes_to_python_logging_natively(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="thalo.guest"):
        log("warn", "careful")
    assert [(r.levelname, r.message) for r in caplog.records] == [("WARNING", "careful")]
    with pytest.raises(ValueError, match="log level must be one of"):
        log("loud", "x")


def test_given_when_then() -> None:
    test = AggregateTest(Counter, "c-1").given(Incremented(amount=1, count=1))
    test.when("increment", {"amount": 2}, position=0).then(
        Incremented(amount=2, count=3, sequence=0)
    )
    assert test.state.count == 3
    test.when("increment", {"amount": 2}, position=0).then_ignored()
    test.when("increment", {"amount": -1}, position=1).then_rejected("positive")
    test.when("reset", position=2).then(Reset(sequence=2))
    test.when("reset", position=3).then()
    assert test.restored().sequence == 2


def test_default_stream_name_follows_message_db_naming() -> None:
    class Renamed(Counter):
        __thalo_aggregate__ = "BankAccount"

    assert AggregateTest(Counter, "c-9").stream_name == "counter-c-9"
    assert AggregateTest(Renamed, "a-1").stream_name == "bankAccount-a-1"


def test_then_failures_explain_themselves() -> None:
    test = AggregateTest(Counter)
    outcome = test.when("increment", {"amount": 1})
    with pytest.raises(AssertionError, match="increment produced"):
        outcome.then(Incremented(amount=9, count=9))
    with pytest.raises(AssertionError, match="was not rejected"):
        outcome.then_rejected()
    with pytest.raises(AssertionError, match="was not ignored"):
        outcome.then_ignored()
    refused = test.when("increment", {"amount": 0})
    with pytest.raises(AssertionError, match=r"produced no events: rejected \(amount must be"):
        refused.then()
    with pytest.raises(AssertionError, match="does not contain 'zero'"):
        refused.then_rejected("zero")
    with pytest.raises(TypeError, match="is not an event"):
        test.given(object())
