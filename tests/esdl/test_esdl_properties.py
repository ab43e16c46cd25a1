"""Property-based tests: the parser fails only with SchemaError, whatever the input; and
printing a schema then parsing it gives back the same model."""

from __future__ import annotations

import functools
import keyword

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thalo.errors import SchemaError
from thalo.esdl import (
    SCALARS,
    Command,
    Declaration,
    EventRef,
    Field,
    Schema,
    TypeRef,
    format_esdl,
    parse,
)
from thalo.esdl.checker import check_schema, snake_case

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "version", "=", '"0.1.0"', '"1.x"', "aggregate", "event", "type", "{", "}", "(", ")",
    "->", "|", "?", "[", "]", ":", ",", "Account", "go", "Int", "String", "[Int?]?",
    "// note\n", "/* block */", "/*", "*/", '"', "\n", " ", "\t", "é", ";", "-",
]  # fmt: skip


def _parses_or_schema_error(text: str) -> None:
    try:
        schema = parse(text, "fuzz.esdl")
    except SchemaError as exc:
        assert exc.diagnostics
        assert exc.message
        for diagnostic in exc.diagnostics:
            assert str(diagnostic)
    else:
        assert isinstance(schema, Schema)
        assert parse(schema.to_esdl()) == schema


@SETTINGS
@given(st.text())
def test_arbitrary_text_fails_only_with_schema_error(text: str) -> None:
    _parses_or_schema_error(text)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup_fails_only_with_schema_error(tokens: list[str]) -> None:
    _parses_or_schema_error(" ".join(tokens))


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.integers(0, 200))
def test_damaged_valid_schemas_fail_only_with_schema_error(tokens: list[str], at: int) -> None:
    text = (
        'version = "0.1.0"\naggregate A {\n  go(a: Int) -> (E | F?)\n}\n'
        "event E { a: [T?]? }\nevent F {}\ntype T { b: String }\n"
    )
    at = min(at, len(text))
    _parses_or_schema_error(text[:at] + " ".join(tokens) + text[at:])


# --- valid schemas ------------------------------------------------------------------------

RESERVED_SNAKE = {*keyword.kwlist, "self", "ctx", "str", "int", "float", "bool", "bytes",
                  "list", "dict", "to_json", "from_json"}  # fmt: skip
RESERVED_CAMEL = {*SCALARS, "Aggregate", "CommandSpec", "Context", "Any", "ClassVar", "SCHEMA",
                  "None", "True", "False"}  # fmt: skip

LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
snake = st.builds(
    lambda first, rest, tail: first + rest + (f"_{tail}" if tail else ""),
    st.sampled_from(LOWER),
    st.text(LOWER + DIGITS, max_size=5),
    st.text(LOWER + DIGITS, max_size=3),
).filter(lambda name: name not in RESERVED_SNAKE)
camel = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(LOWER.upper()),
    st.text(LOWER + LOWER.upper() + DIGITS, max_size=6),
).filter(lambda name: name not in RESERVED_CAMEL and not name.endswith("Base"))


@functools.cache
def type_refs(custom: tuple[str, ...]) -> st.SearchStrategy[TypeRef]:
    names = sorted(SCALARS) + list(custom)
    leaf = st.builds(TypeRef, st.sampled_from(names), st.none(), st.booleans())
    return st.recursive(
        leaf, lambda inner: st.builds(TypeRef, st.none(), inner, st.booleans()), max_leaves=3
    )


@functools.cache  # building a strategy is costly: one per set of usable types
def fields(custom: tuple[str, ...]) -> st.SearchStrategy[tuple[Field, ...]]:
    return st.lists(
        st.builds(Field, snake, type_refs(custom)), max_size=4, unique_by=lambda f: f.name
    ).map(tuple)


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    names = draw(st.lists(camel, min_size=1, max_size=7, unique_by=lambda n: (n, snake_case(n))))
    split = draw(st.integers(1, len(names)))
    event_names, type_names = names[:split], tuple(names[split:])
    # A type may use only the types declared before it, so there is no recursion.
    types = [
        Declaration(name, draw(fields(type_names[:index]))) for index, name in enumerate(type_names)
    ]
    events = [Declaration(name, draw(fields(type_names))) for name in event_names]
    commands = []
    for name in draw(st.lists(snake, max_size=4, unique=True)):
        produced = draw(st.lists(st.sampled_from(event_names), min_size=1, max_size=3, unique=True))
        event_set = len(produced) > 1 or draw(st.booleans())
        refs = tuple(EventRef(event, draw(st.booleans())) for event in produced)
        commands.append(Command(name, draw(fields(type_names)), refs, event_set))
    numbers = draw(st.lists(st.integers(0, 999), min_size=3, max_size=3))
    pre = draw(st.sampled_from(["", "-rc.1", "-alpha", "+build.7"]))
    version = ".".join(map(str, numbers)) + pre
    aggregate = draw(camel.filter(lambda n: f"{n}Base" not in names))
    return check_schema(Schema.build(aggregate, version, commands, events, types))


@SETTINGS
@given(schemas())
def test_print_then_parse_gives_the_same_model(schema: Schema) -> None:
    text = schema.to_esdl()
    again = parse(text)
    assert again == schema
    assert again.to_esdl() == text
    assert again.to_json() == schema.to_json()


@SETTINGS
@given(schemas())
def test_json_round_trip(schema: Schema) -> None:
    assert Schema.from_json(schema.to_json()) == schema


@SETTINGS
@given(schemas(), st.lists(st.sampled_from(["// a", "/* b */", "\n", "  "]), max_size=5))
def test_formatting_keeps_the_model_and_the_comments(schema: Schema, extras: list[str]) -> None:
    # Scatter comments and blanks at line ends of the canonical text, then format it.
    lines = schema.to_esdl().splitlines()
    for index, extra in enumerate(extras):
        position = (index * 7) % len(lines)
        lines[position] += " " + extra
    text = "\n".join(lines) + "\n"
    formatted = format_esdl(text)
    assert parse(formatted) == schema
    assert format_esdl(formatted) == formatted
    for comment in ("// a", "/* b */"):
        assert formatted.count(comment) == text.count(comment)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.integers(0, 200))
def test_formatting_damaged_schemas_is_safe(tokens: list[str], at: int) -> None:
    """fmt raises only SchemaError; when it formats, it is idempotent, keeps every
    comment, and the result means what the input meant (or fails the same checks)."""
    text = (
        'version = "0.1.0"\naggregate A {\n  go(a: Int) -> (E | F?)\n}\n'
        "event E { a: [T?]? }\nevent F {}\ntype T { b: String }\n"
    )
    at = min(at, len(text))
    text = text[:at] + " ".join(tokens) + text[at:]
    try:
        formatted = format_esdl(text)
    except SchemaError:
        return
    assert format_esdl(formatted) == formatted
    for comment in ("// note", "/* block */"):
        assert formatted.count(comment) == text.count(comment)

    def meaning(source: str) -> Schema | None:
        try:
            return parse(source)
        except SchemaError:
            return None

    assert meaning(formatted) == meaning(text)
