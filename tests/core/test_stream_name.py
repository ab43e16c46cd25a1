from __future__ import annotations

import pytest

from thalo.core import (
    aggregate_category,
    cardinal_id,
    category,
    category_types,
    command_stream_name,
    entity_stream_name,
    get_id,
    is_category,
    position_stream_name,
    snapshot_stream_name,
    validate_category,
    validate_stream_name,
)
from thalo.errors import InvalidStreamName


@pytest.mark.parametrize(
    ("stream", "cat", "ident", "cardinal"),
    [
        ("account-123", "account", "123", "123"),
        ("account-123+abc", "account", "123+abc", "123"),
        ("account:command-123", "account:command", "123", "123"),
        ("account-a-b", "account", "a-b", "a-b"),
        ("account", "account", None, None),
        ("account:command+snapshot", "account:command+snapshot", None, None),
    ],
)
def test_parts(stream: str, cat: str, ident: str | None, cardinal: str | None) -> None:
    assert category(stream) == cat
    assert get_id(stream) == ident
    assert cardinal_id(stream) == cardinal
    assert is_category(stream) is (ident is None)


def test_category_types() -> None:
    assert category_types("account:command+snapshot-1") == ("command", "snapshot")
    assert category_types("account-1") == ()


def test_thalo_stream_names() -> None:
    assert aggregate_category("BankAccount") == "bankAccount"
    assert entity_stream_name("BankAccount", "acc-1") == "bankAccount-acc-1"
    assert command_stream_name("BankAccount", "acc-1") == "bankAccount:command-acc-1"
    assert command_stream_name("BankAccount") == "bankAccount:command"
    assert snapshot_stream_name("BankAccount", "acc-1") == "bankAccount:snapshot-acc-1"
    assert position_stream_name("bankAccount", "projector") == "bankAccount:position-projector"
    assert (
        position_stream_name("bankAccount:command", "runtime")
        == "bankAccount:command+position-runtime"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "must not be empty"),
        ("-123", "category"),
        ("account-", "id"),
        ("acc ount-1", "whitespace"),
        (":command-1", "':'"),
        (42, "must be a string"),
    ],
)
def test_invalid_stream_names(name: object, reason: str) -> None:
    with pytest.raises(InvalidStreamName, match=reason):
        validate_stream_name(name)


def test_category_must_not_have_an_id() -> None:
    assert validate_category("account:command") == "account:command"
    with pytest.raises(InvalidStreamName, match="must not contain '-'"):
        validate_category("account-1")
