"""Canonical printing (``Schema.to_esdl``) and source formatting that keeps comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from thalo.errors import SchemaError
from thalo.esdl import format_esdl, parse, parse_file

SCHEMAS = Path(__file__).parent / "schemas"


def test_canonical_text_of_the_bank_account() -> None:
    schema = parse_file(SCHEMAS / "bank_account.esdl")
    assert schema.to_esdl() == (
        'version = "0.1.0"\n'
        "\n"
        "aggregate BankAccount {\n"
        "  open_account(initial_balance: Long) -> OpenedAccount\n"
        "  deposit_funds(amount: Long) -> DepositedFunds\n"
        "  withdraw_funds(amount: Long) -> WithdrewFunds\n"
        "  transfer(amount: Long, to: Account) -> (SentFunds | ReceivedFunds?)\n"
        "  close_account() -> ClosedAccount?\n"
        "}\n"
        "\n"
        "event OpenedAccount {\n  initial_balance: Long\n}\n"
        "\n"
        "event DepositedFunds {\n  amount: Long\n  balance: Long\n}\n"
        "\n"
        "event WithdrewFunds {\n  amount: Long\n  balance: Long\n}\n"
        "\n"
        "event SentFunds {\n  amount: Long\n  to: Account\n}\n"
        "\n"
        "event ReceivedFunds {\n  amount: Long\n  from_account: Account?\n}\n"
        "\n"
        "event ClosedAccount {}\n"
        "\n"
        "type Account {\n  id: String\n  tags: [String?]?\n}\n"
    )


def test_long_commands_get_one_parameter_a_line() -> None:
    params = ", ".join(f"parameter_{i}: String" for i in range(6))
    schema = parse(f'version = "0.1.0"\naggregate A {{ go({params}) -> E }}\nevent E {{}}\n')
    text = schema.to_esdl()
    assert "  go(\n    parameter_0: String,\n" in text
    assert "    parameter_5: String,\n  ) -> E\n" in text
    assert all(len(line) <= 100 for line in text.splitlines())
    assert parse(text) == schema


def test_formatting_keeps_every_comment_where_it_was() -> None:
    source = """// file header
/* about the version */
version   =   "0.1.0" // trailing version

aggregate BankAccount {  // trailing header
  // before open
  open_account(initial_balance: Long) -> OpenedAccount
  transfer(amount: Long,
     to: String) -> (OpenedAccount? |Closed) /* on a later line */
  // end of the aggregate
}
event OpenedAccount { initial_balance: Long }
/* multi
   line */
event Closed {
}  // after the brace
type T {} // tt
// the end
"""
    assert format_esdl(source) == (
        "// file header\n"
        "/* about the version */\n"
        'version = "0.1.0"  // trailing version\n'
        "\n"
        "aggregate BankAccount {  // trailing header\n"
        "  // before open\n"
        "  open_account(initial_balance: Long) -> OpenedAccount\n"
        "  transfer(amount: Long, to: String) -> (OpenedAccount? | Closed)\n"
        "  /* on a later line */\n"
        "  // end of the aggregate\n"
        "}\n"
        "\n"
        "event OpenedAccount {\n"
        "  initial_balance: Long\n"
        "}\n"
        "\n"
        "/* multi\n"
        "   line */\n"
        "event Closed {}  // after the brace\n"
        "\n"
        "type T {}  // tt\n"
        "// the end\n"
    )


def test_formatting_keeps_source_order_and_works_despite_semantic_errors() -> None:
    source = 'type T { a: Nope }\nversion = "0.1.0"\n'
    assert format_esdl(source) == 'type T {\n  a: Nope\n}\n\nversion = "0.1.0"\n'
    with pytest.raises(SchemaError):
        parse(source)


def test_trailing_comment_goes_to_the_last_item_before_it() -> None:
    assert format_esdl("event E { a: Int  b: Int  // about b\n}\n") == (
        "event E {\n  a: Int\n  b: Int  // about b\n}\n"
    )


def test_formatting_refuses_syntax_errors() -> None:
    with pytest.raises(SchemaError, match=r"<esdl>:1:12: error: unexpected '\}'"):
        format_esdl("event E { }}")


def test_one_blank_line_between_members_is_kept() -> None:
    source = (
        'version = "0.1.0"\naggregate A {\n  go() -> E\n\n\n  // later\n  stop() -> E?\n'
        "  again() -> E\n}\nevent E {\n\n  a: Int\n\n  b: Int\n}\n"
    )
    assert format_esdl(source) == (
        'version = "0.1.0"\n\naggregate A {\n  go() -> E\n\n  // later\n  stop() -> E?\n'
        "  again() -> E\n}\n\nevent E {\n  a: Int\n\n  b: Int\n}\n"
    )
