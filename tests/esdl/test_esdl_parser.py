"""The ESDL parser: every grammar form, and every error kind at its exact position."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from thalo.errors import SchemaError
from thalo.esdl import (
    Command,
    Declaration,
    Diagnostic,
    EventRef,
    Field,
    Schema,
    Severity,
    TypeRef,
    parse,
    parse_file,
)

SCHEMAS = Path(__file__).parent / "schemas"


def errors_of(text: str) -> list[tuple[int, int, str]]:
    """(line, column, message) of every error ``parse`` reports for ``text``."""
    with pytest.raises(SchemaError) as info:
        parse(text, "t.esdl")
    diagnostics = info.value.diagnostics
    assert diagnostics, "a SchemaError from parse carries its diagnostics"
    found = []
    for d in diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.severity is Severity.ERROR
        found.append((d.line, d.column, d.message))
    return found


def only_error(text: str) -> tuple[int, int, str]:
    found = errors_of(text)
    assert len(found) == 1, found
    return found[0]


HEAD = 'version = "0.1.0"\n'


# --- grammar forms --------------------------------------------------------------------


def test_the_issue_example_parses_to_the_expected_model() -> None:
    schema = parse(
        """version = "0.1.0"

aggregate BankAccount {
  open_account(initial_balance: Long) -> OpenedAccount
  deposit_funds(amount: Int) -> DepositedFunds
  withdraw_funds(amount: Int) -> WithdrewFunds
  transfer(amount: Int, to: Account) -> (SentFunds? | ReceivedFunds?)
}

event OpenedAccount { initial_balance: Long }
event DepositedFunds { amount: Int }
event WithdrewFunds { amount: Int }
event SentFunds { amount: Int  to: Account? }
event ReceivedFunds { amount: Int }

type Account {
  id: String
  tags: [String?]?
}
"""
    )
    assert schema.name == "BankAccount"
    assert schema.version == "0.1.0"
    assert list(schema.commands) == ["open_account", "deposit_funds", "withdraw_funds", "transfer"]
    transfer = schema.commands["transfer"]
    assert transfer == Command(
        "transfer",
        (Field("amount", TypeRef("Int")), Field("to", TypeRef("Account"))),
        (EventRef("SentFunds", True), EventRef("ReceivedFunds", True)),
        event_set=True,
    )
    assert schema.events["SentFunds"] == Declaration(
        "SentFunds",
        (Field("amount", TypeRef("Int")), Field("to", TypeRef("Account", optional=True))),
    )
    tags = schema.types["Account"].fields[1].type
    assert tags == TypeRef(None, TypeRef("String", optional=True), optional=True)
    assert str(tags) == "[String?]?"
    assert schema.warnings == ()


def test_every_scalar_and_type_form() -> None:
    schema = parse(
        HEAD
        + """aggregate A { run(a: String, b: Int, c: Long, d: Float, e: Double, f: Bool, g: Bytes,
  h: [Int], i: [Int?], j: [Int]?, k: [Int?]?, l: [[String]], m: T, n: T?, o: [T?]) -> E }
event E {}
type T { x: Int }
"""
    )
    params = {p.name: str(p.type) for p in schema.commands["run"].params}
    assert params == {
        "a": "String",
        "b": "Int",
        "c": "Long",
        "d": "Float",
        "e": "Double",
        "f": "Bool",
        "g": "Bytes",
        "h": "[Int]",
        "i": "[Int?]",
        "j": "[Int]?",
        "k": "[Int?]?",
        "l": "[[String]]",
        "m": "T",
        "n": "T?",
        "o": "[T?]",
    }
    assert schema.commands["run"].params[12].type.is_custom
    assert schema.commands["run"].params[0].type.is_scalar
    assert schema.commands["run"].params[7].type.is_array


@pytest.mark.parametrize(
    ("produces", "events", "event_set"),
    [
        ("E", (EventRef("E"),), False),
        ("E?", (EventRef("E", True),), False),
        ("(E)", (EventRef("E"),), True),
        ("(E | F?)", (EventRef("E"), EventRef("F", True)), True),
        ("(E? | F?)", (EventRef("E", True), EventRef("F", True)), True),
    ],
)
def test_event_forms_of_a_command(
    produces: str, events: tuple[EventRef, ...], event_set: bool
) -> None:
    schema = parse(HEAD + f"aggregate A {{ go() -> {produces} }}\nevent E {{}}\nevent F {{}}\n")
    command = schema.commands["go"]
    assert command.events == events
    assert command.event_set is event_set


def test_parameters_over_several_lines_with_a_trailing_comma() -> None:
    schema = parse(
        HEAD + "aggregate A {\n  go(\n    a: Int,\n    b: String,\n  ) -> E\n}\nevent E {}\n"
    )
    assert [p.name for p in schema.commands["go"].params] == ["a", "b"]


def test_fields_separated_by_newlines_spaces_or_commas() -> None:
    schema = parse(
        HEAD + "aggregate A { go() -> E }\nevent E { a: Int, b: Int  c: Int\n d: Int, }\n"
    )
    assert [f.name for f in schema.events["E"].fields] == ["a", "b", "c", "d"]


def test_comments_anywhere() -> None:
    schema = parse(
        '// top\n/* block\n spanning */ version = /* inline */ "0.1.0" // end\n'
        "aggregate A { // x\n go(/* p */ a: Int) -> /* r */ E // y\n}\n"
        "event E { /* nothing */ }\n"
    )
    assert schema.commands["go"].params[0].name == "a"


def test_keywords_can_name_fields() -> None:
    schema = parse(
        HEAD + "aggregate A { go(type: String, event: Int) -> E }\n"
        "event E { version: String  aggregate: Int  type: String }\n"
    )
    assert [f.name for f in schema.events["E"].fields] == ["version", "aggregate", "type"]


def test_declarations_may_come_in_any_order() -> None:
    schema = parse(
        'type T { a: Int }\nevent E { t: T }\naggregate A { go() -> E }\nversion = "1.2.3"\n'
    )
    assert schema.version == "1.2.3"
    assert list(schema.types) == ["T"]


def test_positions_are_recorded_but_ignored_by_equality() -> None:
    text = HEAD + "aggregate A {\n  go(a: Int) -> E\n}\nevent E {}\n"
    schema = parse(text)
    go = schema.commands["go"]
    assert go.span is not None
    assert (go.span.line, go.span.column, go.span.length) == (3, 3, 2)
    assert go.params[0].span is not None
    assert (go.params[0].span.line, go.params[0].span.column) == (3, 6)
    moved = parse("\n\n" + text.replace("  go", "      go"))
    assert moved == schema
    assert hash(moved) == hash(schema)


def test_test_schemas_parse_without_warnings() -> None:
    for path in sorted(SCHEMAS.glob("*.esdl")):
        schema = parse_file(path)
        assert schema.warnings == (), path
        assert schema.filename == str(path)


def test_counter_schema_shape() -> None:
    schema = parse_file(SCHEMAS / "counter.esdl")
    assert schema.name == "Counter"
    assert list(schema.commands) == ["increment", "decrement"]
    assert [str(f.type) for f in schema.events["Incremented"].fields] == ["Int", "Long"]


def test_parse_file_reports_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read ESDL file"):
        parse_file(tmp_path / "missing.esdl")
    bad = tmp_path / "latin1.esdl"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(SchemaError, match="cannot read ESDL file"):
        parse_file(bad)


# --- JSON round trip ------------------------------------------------------------------


def test_json_round_trip_of_every_test_schema() -> None:
    for path in sorted(SCHEMAS.glob("*.esdl")):
        schema = parse_file(path)
        again = Schema.from_json(schema.to_json())
        assert again == schema
        assert again.to_json() == schema.to_json()
        assert again.to_esdl() == schema.to_esdl()


def test_from_json_checks_like_the_parser() -> None:
    data = parse_file(SCHEMAS / "counter.esdl").to_json()
    data["events"][0]["fields"][0]["type"] = "Integer"
    with pytest.raises(SchemaError, match="unknown type 'Integer'"):
        Schema.from_json(data)
    with pytest.raises(SchemaError, match="malformed schema JSON"):
        Schema.from_json({"format": 1, "aggregate": "A"})
    with pytest.raises(SchemaError, match="unsupported schema JSON format"):
        Schema.from_json({"format": 99})
    data = parse_file(SCHEMAS / "counter.esdl").to_json()
    data["events"][0]["fields"][0]["type"] = "[Int"
    with pytest.raises(SchemaError, match="invalid type expression"):
        Schema.from_json(data)


def test_equality_compares_content() -> None:
    counter = parse_file(SCHEMAS / "counter.esdl")
    assert counter == parse(counter.to_esdl())
    assert counter != parse(counter.to_esdl().replace('"0.1.0"', '"0.2.0"'))
    assert counter != parse(counter.to_esdl().replace("count: Long", "count: Int"))


# --- syntax errors ---------------------------------------------------------------------


def test_missing_colon() -> None:
    assert only_error(HEAD + "aggregate A {\n  go(amount Int) -> E\n}\nevent E {}\n") == (
        3,
        13,
        "unexpected 'Int', expected ':'",
    )


def test_missing_arrow() -> None:
    line, column, message = only_error(HEAD + "aggregate A {\n  go(a: Int) E\n}\nevent E {}\n")
    assert (line, column) == (3, 14)
    assert message.startswith("unexpected 'E', expected")
    assert "'->'" in message


def test_unclosed_block_points_at_the_next_declaration() -> None:
    line, column, message = only_error(
        HEAD + "aggregate A { go() -> E }\nevent E { a: Int\n\nevent F {}\n"
    )
    assert (line, column) == (5, 1)
    assert message.startswith("unexpected 'event', expected one of:")
    assert "'}'" in message


def test_unexpected_end_of_file() -> None:
    line, column, message = only_error(HEAD + "aggregate A { go() -> E }\nevent E { a: Int")
    assert (line, column) == (3, 17)  # just past the last character
    assert message.startswith("unexpected end of file")


def test_unexpected_character() -> None:
    assert only_error(HEAD + "aggregate A { go() -> E }\nevent E { a: Int; }\n") == (
        3,
        17,
        "unexpected character ';', expected one of: ',', '=', '?', '}', a name",
    )


def test_unterminated_string_and_comment() -> None:
    assert only_error('version = "0.1.0\naggregate A {}\n')[:2] == (1, 11)
    assert "unterminated string" in only_error('version = "0.1.0\naggregate A {}\n')[2]
    line, column, message = only_error(HEAD + "aggregate A { go() -> E }\nevent E {}\n/* open")
    assert (line, column) == (4, 1)
    assert "unterminated comment" in message


def test_syntax_errors_in_several_declarations_are_reported_together() -> None:
    found = errors_of(
        HEAD
        + "aggregate A {\n  go(a Int) -> E\n}\n"  # line 3
        + "event E { a: [Int }\n"  # line 5
        + "type T { b: Int c }\n"  # line 6
    )
    assert [(line, column) for line, column, _ in found] == [(3, 8), (5, 19), (6, 19)]


def test_syntax_errors_do_not_cause_undeclared_noise() -> None:
    # E's declaration is broken: no "event 'E' is not declared" on top of the syntax error.
    found = errors_of(HEAD + "aggregate A { go() -> E }\nevent E { a: }\n")
    assert len(found) == 1
    assert found[0][:2] == (3, 14)


# --- semantic errors -------------------------------------------------------------------


def test_missing_version() -> None:
    assert only_error("aggregate A { go() -> E }\nevent E {}\n") == (
        1,
        1,
        'missing version: add a line like version = "0.1.0"',
    )


@pytest.mark.parametrize("version", ["0.1", "v1.0.0", "1.0.0.0", "01.0.0", ""])
def test_invalid_version(version: str) -> None:
    line, column, message = only_error(f'version = "{version}"\naggregate A {{}}\n')
    assert (line, column) == (1, 11)
    assert message.startswith(f"invalid version {version!r}")


def test_more_than_one_version() -> None:
    assert only_error(HEAD + 'aggregate A {}\nversion = "0.2.0"\n')[:2] == (3, 11)


def test_missing_aggregate() -> None:
    assert only_error(HEAD + "event E {}\n")[:2] == (1, 1)
    assert "missing aggregate" in only_error(HEAD + "event E {}\n")[2]


def test_more_than_one_aggregate() -> None:
    line, column, message = only_error(HEAD + "aggregate A {}\naggregate B {}\n")
    assert (line, column) == (3, 11)
    assert message.startswith("more than one aggregate: 'B'")


def test_unknown_type() -> None:
    assert only_error(HEAD + "aggregate A { go(a: [Integer?]) -> E }\nevent E {}\n") == (
        2,
        22,
        "unknown type 'Integer' (scalars are String, Int, Long, Float, Double, Bool, Bytes)",
    )


def test_event_used_as_a_type_and_type_used_as_an_event() -> None:
    found = errors_of(HEAD + "aggregate A { go(e: E) -> T }\nevent E {}\ntype T {}\n")
    assert found == [
        (2, 21, "'E' is an event, not a type: fields may use scalars and 'type' declarations"),
        (2, 27, "'T' is a type, not an event"),
    ]


def test_undeclared_event() -> None:
    assert only_error(HEAD + "aggregate A { go() -> (E | Missing?) }\nevent E {}\n") == (
        2,
        28,
        "event 'Missing' is not declared (add 'event Missing { ... }')",
    )


def test_duplicates() -> None:
    found = errors_of(
        HEAD
        + "aggregate A {\n"
        + "  go(a: Int, a: Int) -> (E | E)\n"  # line 3
        + "  go() -> E\n"  # line 4
        + "}\n"
        + "event E { x: Int  x: Int }\n"  # line 6
        + "type E {}\n"  # line 7
    )
    assert found == [
        (3, 14, "duplicate parameter 'a' (first declared at line 3)"),
        (3, 30, "event 'E' listed twice"),
        (4, 3, "duplicate command 'go' (first declared at line 3)"),
        (6, 19, "duplicate field 'x' (first declared at line 6)"),
        (7, 6, "duplicate name 'E': already declared as event at line 6"),
    ]


def test_recursive_types() -> None:
    found = errors_of(
        HEAD
        + "aggregate A { go(n: Node) -> E }\nevent E {}\n"
        + "type Node { children: [Node]? }\n"  # line 4
        + "type P { q: Q }\ntype Q { p: P? }\n"  # lines 5, 6
    )
    assert found == [
        (4, 24, "recursive type: Node -> Node"),
        (6, 13, "recursive type: P -> Q -> P"),
    ]


def test_name_case_rules() -> None:
    found = errors_of(
        HEAD
        + "aggregate bank_account {\n"  # line 2
        + "  DepositFunds(Amount: Int) -> E\n"  # line 3
        + "}\n"
        + "event opened { firstName: Int }\n"  # line 5
        + "type T_x {}\n"  # line 6
    )
    assert found == [
        (2, 11, "aggregate name 'bank_account' must be CamelCase (like BankAccount)"),
        (3, 3, "command name 'DepositFunds' must be snake_case (like deposit_funds)"),
        (3, 16, "parameter name 'Amount' must be snake_case (like amount_due)"),
        (3, 32, "event 'E' is not declared (add 'event E { ... }')"),
        (5, 7, "event name 'opened' must be CamelCase (like OpenedAccount)"),
        (5, 16, "field name 'firstName' must be snake_case (like amount_due)"),
        (6, 6, "type name 'T_x' must be CamelCase (like OpenedAccount)"),
    ]


def test_reserved_names() -> None:
    found = errors_of(
        HEAD
        + "aggregate A { go(ctx: Int, self: Int, from: Int) -> E }\n"  # line 2
        + "event E { class: Int  to_json: Int  str: Int }\n"  # line 3
        + "type Context {}\ntype ABase {}\ntype String {}\n"  # lines 4-6
    )
    assert [(line, column) for line, column, _ in found] == [
        (2, 18),
        (2, 28),
        (2, 39),
        (3, 11),
        (3, 23),
        (3, 37),
        (4, 6),
        (5, 6),
        (6, 6),
    ]
    assert all("is reserved" in message for _, _, message in found)


def test_events_whose_apply_methods_would_clash() -> None:
    line, column, message = only_error(
        HEAD
        + "aggregate A { go() -> (HTTPDone | HttpDone) }\nevent HTTPDone {}\nevent HttpDone {}\n"
    )
    assert (line, column) == (4, 7)
    assert "apply_http_done" in message


def test_many_errors_in_one_file_are_reported_together_in_source_order() -> None:
    found = errors_of(
        'version = "x"\n'
        "aggregate A {\n  go(a: Nope) -> Missing\n  go() -> E\n}\n"
        "event E { a: Int  a: Int }\n"
    )
    assert [(line, column) for line, column, _ in found] == [
        (1, 11),
        (3, 9),
        (3, 18),
        (4, 3),
        (6, 19),
    ]


def test_error_message_renders_file_line_column_source_and_caret() -> None:
    with pytest.raises(SchemaError) as info:
        parse(HEAD + "aggregate A {\n  go(a: Integer) -> E\n}\nevent E {}\n", "bank.esdl")
    assert info.value.message == (
        "bank.esdl:3:9: error: unknown type 'Integer' (scalars are String, Int, Long, Float, "
        "Double, Bool, Bytes)\n"
        " 3 |   go(a: Integer) -> E\n"
        "   |         ^^^^^^^\n"
        "\n"
        "1 error"
    )
    assert info.value.exit_code == 2


# --- warnings --------------------------------------------------------------------------


def test_declared_but_never_produced_events_and_unused_types_are_warnings() -> None:
    schema = parse(
        HEAD
        + "aggregate A { go(u: Used) -> E }\n"
        + "event E { n: Nested }\nevent Orphan {}\n"  # lines 3, 4
        + "type Used {}\ntype Nested { d: Deep }\ntype Deep {}\ntype Lonely {}\n"  # 5-8
    )
    assert [(w.line, w.column, w.severity, w.message) for w in schema.warnings] == [
        (4, 7, Severity.WARNING, "event 'Orphan' is declared but no command produces it"),
        (8, 6, Severity.WARNING, "type 'Lonely' is declared but never used"),
    ]
    assert "t.esdl" not in str(schema.warnings[0])  # default file name
    assert str(schema.warnings[0]).startswith("<esdl>:4:7: warning: event 'Orphan'")


def test_deep_nesting_is_a_schema_error_not_a_crash() -> None:
    depth = 5000
    text = (
        HEAD + "aggregate A { go(a: " + "[" * depth + "Int" + "]" * depth + ") -> E }\nevent E {}\n"
    )
    with pytest.raises(SchemaError):
        parse(text)


def test_arrays_nested_too_deep() -> None:
    ok = "[" * 32 + "Int" + "]" * 32
    parse(HEAD + f"aggregate A {{ go(a: {ok}) -> E }}\nevent E {{}}\n")
    deep = "[" * 33 + "Int" + "]" * 33
    assert only_error(HEAD + f"aggregate A {{ go(a: {deep}) -> E }}\nevent E {{}}\n") == (
        2,
        21,
        "arrays nested 33 deep (at most 32)",
    )


def test_from_json_reports_duplicates_that_a_mapping_would_hide() -> None:
    data = parse_file(SCHEMAS / "counter.esdl").to_json()
    data["commands"].append(data["commands"][0])
    with pytest.raises(SchemaError, match="<json>: error: duplicate command 'increment'"):
        Schema.from_json(data)


def test_a_byte_order_mark_is_allowed_in_files(tmp_path: Path) -> None:
    file = tmp_path / "bom.esdl"
    file.write_bytes(b"\xef\xbb\xbf" + (SCHEMAS / "counter.esdl").read_bytes())
    assert parse_file(file) == parse_file(SCHEMAS / "counter.esdl")


def test_windows_line_endings_and_tabs() -> None:
    text = HEAD + "aggregate A {\r\n\tgo(a:\tNope) -> E\r\n}\r\nevent E {}\r\n"
    with pytest.raises(SchemaError) as info:
        parse(text)
    (diagnostic,) = info.value.diagnostics
    assert isinstance(diagnostic, Diagnostic)
    assert (diagnostic.line, diagnostic.column) == (3, 8)
    # The caret line keeps the tab so the caret stands under the name.
    assert diagnostic.render().endswith(" 3 | \tgo(a:\tNope) -> E\n   | \t     \t^^^^")


def test_schemas_pickle_and_copy_even_after_validating() -> None:
    schema = parse_file(SCHEMAS / "bank_account.esdl")
    schema.validate_command("deposit_funds", {"amount": 1})  # compiles validators
    for again in (pickle.loads(pickle.dumps(schema)), copy.deepcopy(schema)):
        assert again == schema
        assert again.warnings == schema.warnings
        again.validate_command("deposit_funds", {"amount": 2})
