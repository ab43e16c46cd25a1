"""Evolving a schema: event versions and defaults in ESDL, and the field-level diff
(``thalo esdl diff``) that the compatibility check at publish prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thalo.errors import SchemaError
from thalo.esdl import Schema, format_esdl, parse
from thalo.esdl.diff import diff_schemas

BANK = (Path(__file__).resolve().parents[2] / "examples/bank_account/bank_account.esdl").read_text()
HEAD = 'version = "0.1.0"\naggregate A { go() -> E }\n'


def bank(version: str = "0.2.0", **replacements: str) -> Schema:
    """The bank_account example at ``version``, with text replaced (old=new pairs)."""
    text = BANK.replace('version = "0.1.0"', f'version = "{version}"')
    for old, new in replacements.values():  # type: ignore[misc]
        assert old in text, old
        text = text.replace(old, new)
    return parse(text)


DEPOSITED = "event DepositedFunds {\n  amount: Long\n  balance: Long\n"


def errors(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(SchemaError) as info:
        parse(text)
    return [(d.line, d.column, d.message) for d in info.value.diagnostics]  # type: ignore[attr-defined]


def test_event_versions_and_defaults_parse_print_and_round_trip() -> None:
    schema = parse(
        HEAD + 'event E version 3 {\n  a: Long\n  memo: String = "n/a"\n'
        "  tags: [String] = []\n  note: String? = null\n  at: Double = 1.5e3\n  ok: Bool = true\n"
        '  escaped: String = "tab\\there"\n}\n'
    )
    event = schema.events["E"]
    assert event.version == 3
    assert [(f.name, f.default) for f in event.fields] == [
        ("a", None),
        ("memo", '"n/a"'),
        ("tags", "[]"),
        ("note", "null"),
        ("at", "1500.0"),
        ("ok", "true"),
        ("escaped", '"tab\\there"'),
    ]
    assert event.field_named("escaped").default_value == "tab\there"  # type: ignore[union-attr]
    printed = schema.to_esdl()
    assert "event E version 3 {\n" in printed
    assert '  memo: String = "n/a"\n' in printed
    assert parse(printed) == schema
    assert Schema.from_json(json.loads(json.dumps(schema.to_json()))) == schema
    # Version and defaults take part in equality (the registry compares schemas).
    assert parse(printed.replace("version 3", "version 4")) != schema
    assert parse(printed.replace('"n/a"', '"x"')) != schema


def test_schemas_without_versions_keep_their_json_form() -> None:
    """Stored schemas of earlier publishes must read back unchanged."""
    events = parse(BANK).to_json()["events"]
    assert events[1] == {
        "name": "DepositedFunds",
        "fields": [{"name": "amount", "type": "Long"}, {"name": "balance", "type": "Long"}],
    }


def test_fmt_keeps_versions_defaults_and_comments() -> None:
    source = HEAD + 'event E   version 2{ // v2\n  a:Long = 1 // one\n  b : String="x"}\n'
    assert format_esdl(source) == (
        'version = "0.1.0"\n\naggregate A {\n  go() -> E\n}\n\n'
        'event E version 2 {  // v2\n  a: Long = 1  // one\n  b: String = "x"\n}\n'
    )


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        (
            "event E version 0 {}",
            (3, 17, "event 'E': version must be a whole number of at least 1"),
        ),
        (
            "event E version 2.5 {}",
            (3, 17, "event 'E': version must be a whole number of at least 1"),
        ),
        (
            'event E { a: Long = "x" }',
            (3, 21, "default of E.a (Long): expected Long (64-bit signed integer), got string"),
        ),
        (
            "event E { a: Int = 3000000000 }",
            (
                3,
                20,
                "default of E.a (Int): 3000000000 is out of range for Int (32-bit signed "
                "integer): [-2147483648, 2147483647]",
            ),
        ),
        (
            'event E { a: [Int] = [1, "x"] }',
            (
                3,
                22,
                "default of E.a ([Int]): $[1]: expected Int (32-bit signed integer), got string",
            ),
        ),
        (
            "event E { a: String = null }",
            (3, 23, "default of E.a (String): expected String, got null"),
        ),
        ('event E { a: String = "\\q" }', (3, 23, 'invalid string "\\q": Invalid \\escape')),
    ],
)
def test_bad_versions_and_defaults_are_reported_where_they_stand(
    declaration: str, expected: tuple[int, int, str]
) -> None:
    (found,) = errors(HEAD + declaration + "\n")
    assert found[:2] == expected[:2]
    assert found[2].startswith(expected[2]), found


def test_defaults_only_on_event_fields() -> None:
    found = errors(HEAD + "event E { t: T }\ntype T {\n  a: Long = 1\n}\n")
    assert found == [
        (
            5,
            13,
            "field 'a' of type 'T': only event fields take a default (it fills events "
            "stored before the field existed)",
        )
    ]


def test_adding_optional_fields_events_and_commands_is_fine() -> None:
    new = bank(
        f=(DEPOSITED, DEPOSITED + "  memo: String?\n"),
        c=(
            "  close_account() -> ClosedAccount\n",
            "  close_account() -> ClosedAccount\n  freeze() -> Frozen\n",
        ),
        e=("event ClosedAccount {}", "event ClosedAccount {}\n\nevent Frozen {}"),
    )
    diff = diff_schemas(parse(BANK), new)
    assert diff.breaking == ()
    assert [c.render() for c in diff.changes] == [
        "  DepositedFunds.memo: added, optional (String?)",
        "  event Frozen: added",
        "  command freeze: added",
    ]


def test_breaking_changes_are_named_field_by_field() -> None:
    new = bank(
        f=(DEPOSITED, "event DepositedFunds {\n  amount: String\n  memo: String\n"),
        w=(
            "event WithdrewFunds {\n  amount: Long\n  balance: Long\n",
            "event WithdrewFunds {\n  amount: Long\n  balance: Long?\n",
        ),
        c=("  close_account() -> ClosedAccount\n", ""),
        e=("event ClosedAccount {}", ""),
    )
    old = parse(BANK)
    diff = diff_schemas(old, new)
    assert diff.render().splitlines() == [
        "BankAccount 0.1.0 -> 0.2.0",
        "  ! DepositedFunds.amount: retyped (Long -> String) — BREAKING",
        "  ! DepositedFunds.memo: added, required (String) — BREAKING",
        "  ! DepositedFunds.balance: removed (required, Long) — BREAKING",
        "    WithdrewFunds.balance: now optional (Long -> Long?)",
        "  ! event ClosedAccount: removed — BREAKING if stored",
        "    command close_account: removed",
    ]
    # The other way round, an optional field becoming required breaks too.
    back = diff_schemas(new, parse(BANK.replace("0.1.0", "0.3.0")))
    assert "  ! WithdrewFunds.balance: now required (Long? -> Long) — BREAKING" in back.render()


def test_a_version_bump_declares_upcasting() -> None:
    """Defaults fill added fields of old events; the rest is the module's upcast hook."""
    old = parse(BANK)
    no_bump = bank(f=(DEPOSITED, DEPOSITED + '  memo: String = ""\n'))
    (refused,) = diff_schemas(old, no_bump).breaking
    assert refused.render() == (
        '! DepositedFunds.memo: added, required (String = ""); bump to `event DepositedFunds '
        "version 2` so the default applies — BREAKING"
    )
    bumped = bank(
        f=(
            DEPOSITED,
            "event DepositedFunds version 2 {\n  amount: Int\n  balance: Long\n"
            '  memo: String = ""\n',
        ),
    )
    diff = diff_schemas(old, bumped)
    assert diff.breaking == ()
    assert [c.render() for c in diff.changes] == [
        "  event DepositedFunds: schema version 1 -> 2",
        "~ DepositedFunds.amount: retyped (Long -> Int) (upcast: the module's upcast hook, "
        "for events of version < 2)",
        '~ DepositedFunds.memo: added, required (String = "") (upcast: the default fills '
        "events of version < 2)",
    ]


def test_widening_and_custom_types_are_followed() -> None:
    old = parse(
        'version = "0.1.0"\naggregate A { go() -> E }\nevent E { n: Int  f: Float  to: T }\n'
        "type T { id: String  tags: [String] }\n"
    )
    new = parse(
        'version = "0.2.0"\naggregate A { go() -> E }\nevent E { n: Long  f: Double  to: T }\n'
        "type T { id: Long  tags: [String?]  extra: Bool }\n"
    )
    assert [c.render() for c in diff_schemas(old, new).changes] == [
        "  E.n: widened (Int -> Long)",
        "  E.f: widened (Float -> Double)",
        "! E.to.id: retyped (String -> Long) — BREAKING",
        "  E.to.tags[]: now optional (String -> String?)",
        "! E.to.extra: added, required (Bool) — BREAKING",
    ]


def test_a_version_never_goes_down() -> None:
    old = bank(
        "0.2.0",
        f=(DEPOSITED, "event DepositedFunds version 3 {\n  amount: Long\n  balance: Long\n"),
    )
    new = bank(
        "0.3.0",
        f=(DEPOSITED, "event DepositedFunds version 2 {\n  amount: Long\n  balance: Long\n"),
    )
    (refused,) = diff_schemas(old, new).breaking
    assert refused.what == "schema version 3 -> 2 (a version never goes down)"


def thalo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thalo.cli.main", *args], capture_output=True, text=True, timeout=60
    )


def test_esdl_diff_cli(tmp_path: Path) -> None:
    old, new, other = tmp_path / "old.esdl", tmp_path / "new.esdl", tmp_path / "other.esdl"
    old.write_text(BANK)
    new.write_text(
        bank()
        .to_esdl()
        .replace(
            "  balance: Long\n}\n\nevent Withdrew",
            "  balance: Long\n  memo: String\n}\n\nevent Withdrew",
        )
    )
    result = thalo("esdl", "diff", str(old), str(new))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "BankAccount 0.1.0 -> 0.2.0",
        "  ! DepositedFunds.memo: added, required (String) — BREAKING",
    ]
    as_json = thalo("esdl", "diff", "--json", str(old), str(new))
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["breaking"] is True
    assert data["changes"][0]["path"] == "DepositedFunds.memo"
    same = thalo("esdl", "diff", str(old), str(old))
    assert (same.returncode, same.stdout) == (0, "BankAccount 0.1.0 -> 0.1.0: no changes\n")
    other.write_text(HEAD + "event E {}\n")
    mismatch = thalo("esdl", "diff", str(old), str(other))
    assert mismatch.returncode == 2
    assert "not one aggregate" in mismatch.stderr


def test_with_defaults_fills_what_old_events_lack() -> None:
    event = parse(
        HEAD + 'event E version 2 {\n  a: Long\n  b: String = "x"\n  c: String? = "y"\n'
        '  d: String? = "z"\n  e: Long\n}\n'
    ).events["E"]
    stored = {"a": 1, "b": None, "d": None}
    assert event.with_defaults(stored) == {"a": 1, "b": "x", "c": "y", "d": None}
    assert stored == {"a": 1, "b": None, "d": None}, "the stored data is not changed"
