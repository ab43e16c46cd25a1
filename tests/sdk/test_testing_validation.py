"""``AggregateTest.when`` validates payloads against the schema, as the runtime does."""

from __future__ import annotations

import pytest
from tally import Counter, Incremented

from thalo.errors import PayloadInvalid, Violation
from thalo.esdl import parse
from thalo.sdk.testing import AggregateTest


def test_a_payload_the_runtime_refuses_is_refused_with_the_same_violations() -> None:
    payload = {"amount": "3"}
    with pytest.raises(PayloadInvalid) as runtime:
        # What the runtime does with the published schema (runtime.py: validate_command).
        parse(Counter.__thalo_schema__).validate_command("increment", payload)
    test = AggregateTest(Counter)
    with pytest.raises(PayloadInvalid) as harness:
        test.when("increment", payload)
    assert harness.value.violations == runtime.value.violations
    assert harness.value.violations == (
        Violation("$.amount", "expected Int (32-bit signed integer), got string"),
    )
    assert harness.value.message == runtime.value.message
    assert test.state.count == 0  # refused before the handler ran


@pytest.mark.parametrize(
    ("payload", "path"),
    [({}, "$.amount"), ({"amount": 1, "extra": True}, "$.extra"), ({"amount": 2**31}, "$.amount")],
)
def test_missing_unknown_and_out_of_range_fields_are_refused(
    payload: dict[str, object], path: str
) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        AggregateTest(Counter).when("increment", payload)
    assert [v.path for v in refused.value.violations][:1] == [path]


def test_a_valid_payload_still_runs_the_handler() -> None:
    AggregateTest(Counter).when("increment", {"amount": 3}).then(Incremented(amount=3, count=3))
