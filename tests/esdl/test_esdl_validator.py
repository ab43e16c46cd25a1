"""Payload validation: types, integer ranges, optionals, nesting, arrays, unknown fields,
and the JSON path of every violation."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from thalo.errors import PayloadInvalid, UnknownCommand
from thalo.esdl import Schema, parse, parse_file

SCHEMAS = Path(__file__).parent / "schemas"


@pytest.fixture(scope="module")
def everything() -> Schema:
    return parse_file(SCHEMAS / "everything.esdl")


def violations(call: Any, *args: Any) -> list[tuple[str, str]]:
    with pytest.raises(PayloadInvalid) as info:
        call(*args)
    assert info.value.exit_code == 2
    assert info.value.http_status == 422
    return [(v.path, v.message) for v in info.value.violations]


def paths(call: Any, *args: Any) -> list[str]:
    return [path for path, _ in violations(call, *args)]


CREATE = {
    "name": "n",
    "size": 1,
    "total": 2,
    "ratio": 0.5,
    "precise": 1.25,
    "enabled": True,
    "blob": base64.b64encode(b"\x00\x01").decode(),
}


def test_valid_payloads_pass(everything: Schema) -> None:
    everything.validate_command("create", CREATE)
    everything.validate_command("touch", {})
    everything.validate_command("tag", {"tags": []})
    everything.validate_command(
        "tag",
        {
            "tags": ["a"],
            "owner": {"id": "o", "avatar": None, "history": [{"text": "t"}]},
            "scores": [[1, None], []],
        },
    )
    everything.validate_event("Touched", {})
    everything.validate_event("Noted", {"notes": [None, {"text": "x", "attachments": ["AA=="]}]})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", 1, "expected String, got integer"),
        ("name", "a\ud800", "expected String: not valid Unicode (lone surrogate)"),
        ("size", True, "expected Int (32-bit signed integer), got boolean"),
        ("size", 1.0, "expected Int (32-bit signed integer), got number"),
        ("size", "1", "expected Int (32-bit signed integer), got string"),
        (
            "size",
            2**31,
            f"{2**31} is out of range for Int (32-bit signed integer): [{-(2**31)}, {2**31 - 1}]",
        ),
        (
            "total",
            -(2**63) - 1,
            f"{-(2**63) - 1} is out of range for Long (64-bit signed "
            f"integer): [{-(2**63)}, {2**63 - 1}]",
        ),
        ("ratio", False, "expected Float (32-bit float), got boolean"),
        ("ratio", 1e39, "1e+39 is out of range for Float (32-bit float)"),
        ("precise", float("nan"), "nan is out of range for Double (64-bit float)"),
        ("precise", None, "expected Double (64-bit float), got null"),
        ("enabled", 1, "expected Bool, got integer"),
        ("blob", b"raw", "expected Bytes (a base64 string), got bytes"),
        ("blob", "not base64!", "expected Bytes: not valid base64"),
        ("blob", "AAA", "expected Bytes: not valid base64"),
    ],
)
def test_scalar_violations(everything: Schema, field: str, value: Any, message: str) -> None:
    payload = {**CREATE, field: value}
    assert violations(everything.validate_command, "create", payload) == [(f"$.{field}", message)]


def test_integer_bounds_are_inclusive_and_ints_are_fine_for_floats(everything: Schema) -> None:
    for size, total in [(2**31 - 1, 2**63 - 1), (-(2**31), -(2**63))]:
        everything.validate_command("create", {**CREATE, "size": size, "total": total})
    everything.validate_command("create", {**CREATE, "ratio": 3, "precise": -(10**300)})


def test_missing_and_unknown_fields_all_reported(everything: Schema) -> None:
    found = violations(everything.validate_command, "create", {"name": "n", "extra": 1, "x y": 2})
    assert found == [
        ("$.size", "required field is missing"),
        ("$.total", "required field is missing"),
        ("$.ratio", "required field is missing"),
        ("$.precise", "required field is missing"),
        ("$.enabled", "required field is missing"),
        ("$.blob", "required field is missing"),
        (
            "$.extra",
            "unknown field (command create has name, size, total, ratio, precise, enabled, blob)",
        ),
        (
            "$['x y']",
            "unknown field (command create has name, size, total, ratio, precise, enabled, blob)",
        ),
    ]


def test_nested_paths(everything: Schema) -> None:
    payload = {
        "tags": ["a", 2, None],
        "owner": {"id": 5, "history": [{"text": "t"}, {"text": None, "attachments": ["AA==", 1]}]},
        "scores": [[1, "x"], None, [None, 2**40]],
    }
    assert paths(everything.validate_command, "tag", payload) == [
        "$.tags[1]",
        "$.tags[2]",
        "$.owner.id",
        "$.owner.history[1].text",
        "$.owner.history[1].attachments[1]",
        "$.scores[0][1]",
        "$.scores[1]",
        "$.scores[2][1]",
    ]


def test_optional_fields_may_be_missing_or_null_but_required_may_not_be_null(
    everything: Schema,
) -> None:
    everything.validate_command("tag", {"tags": [], "owner": None, "scores": None})
    assert violations(everything.validate_command, "tag", {"tags": None}) == [
        ("$.tags", "expected array [String], got null")
    ]


def test_non_object_payloads(everything: Schema) -> None:
    for payload in (None, [], "x", 1):
        assert paths(everything.validate_command, "touch", payload) == ["$"]
    assert violations(everything.validate_command, "tag", {"tags": [], "owner": []}) == [
        ("$.owner", "expected object Owner, got array")
    ]


def test_unknown_command_and_event(everything: Schema) -> None:
    with pytest.raises(UnknownCommand) as info:
        everything.validate_command("explode", {})
    assert info.value.known == ("create", "tag", "touch")
    assert info.value.http_status == 404
    assert violations(everything.validate_event, "Exploded", {}) == [
        ("$", "unknown event type 'Exploded' (known: Created, Tagged, Noted, Touched)")
    ]


def test_event_data_validation(everything: Schema) -> None:
    assert violations(everything.validate_event, "Tagged", {"tags": "a"}) == [
        ("$.tags", "expected array [String], got string")
    ]


def test_payload_invalid_message_and_dict() -> None:
    counter = parse_file(SCHEMAS / "counter.esdl")
    with pytest.raises(PayloadInvalid) as info:
        counter.validate_command("increment", {"amount": "2"})
    assert info.value.message == (
        "payload of command 'increment' does not match the schema:\n"
        "  $.amount: expected Int (32-bit signed integer), got string"
    )
    assert info.value.to_dict()["violations"] == [
        {"path": "$.amount", "message": "expected Int (32-bit signed integer), got string"}
    ]


# --- events a handler returned ---------------------------------------------------------


@pytest.fixture(scope="module")
def bank() -> Schema:
    return parse_file(SCHEMAS / "bank_account.esdl")


def test_command_events_accepts_what_the_command_declares(bank: Schema) -> None:
    bank.validate_command_events("deposit_funds", [("DepositedFunds", {"amount": 1, "balance": 1})])
    bank.validate_command_events("close_account", [])
    bank.validate_command_events("close_account", [("ClosedAccount", {})])
    sent = ("SentFunds", {"amount": 1, "to": {"id": "b"}})
    bank.validate_command_events("transfer", [sent])
    bank.validate_command_events("transfer", [sent, ("ReceivedFunds", {"amount": 1})])


def test_command_events_violations(bank: Schema) -> None:
    assert violations(bank.validate_command_events, "deposit_funds", []) == [
        ("$", "required event 'DepositedFunds' is missing")
    ]
    found = violations(
        bank.validate_command_events,
        "transfer",
        [
            ("ReceivedFunds", {"amount": "1"}),
            ("OpenedAccount", {"initial_balance": 1}),
            ("ReceivedFunds", {"amount": 1}),
        ],
    )
    assert found == [
        ("$[0].data.amount", "expected Long (64-bit signed integer), got string"),
        (
            "$[1].type",
            "command 'transfer' does not produce 'OpenedAccount' "
            "(it declares (SentFunds | ReceivedFunds?))",
        ),
        ("$[2].type", "event 'ReceivedFunds' produced more than once"),
        ("$", "required event 'SentFunds' is missing"),
    ]
    with pytest.raises(UnknownCommand):
        bank.validate_command_events("explode", [])


def test_validators_are_compiled_once_per_schema() -> None:
    schema = parse('version = "0.1.0"\naggregate A { go(a: Int) -> E }\nevent E {}\n')
    schema.validate_command("go", {"a": 1})
    compiled = schema._compiled
    schema.validate_command("go", {"a": 2})
    assert schema._compiled is compiled
