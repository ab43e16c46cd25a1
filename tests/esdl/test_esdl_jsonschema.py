"""JSON Schema (2020-12) of command payloads and event data."""

from __future__ import annotations

from pathlib import Path

import pytest

import thalo.esdl
from thalo.errors import PayloadInvalid, UnknownCommand
from thalo.esdl import parse_file

SCHEMAS = Path(__file__).parent / "schemas"
INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
INT64 = {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1}


def test_command_schema_of_the_counter() -> None:
    counter = parse_file(SCHEMAS / "counter.esdl")
    assert counter.command_json_schema("increment") == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Counter.increment",
        "type": "object",
        "properties": {"amount": INT32},
        "required": ["amount"],
        "additionalProperties": False,
    }
    assert counter.event_json_schema("Incremented")["properties"] == {
        "amount": INT32,
        "count": INT64,
    }


def test_every_type_form_and_definitions() -> None:
    schema = parse_file(SCHEMAS / "everything.esdl")
    create = schema.command_json_schema("create")["properties"]
    assert create["ratio"] == {"type": "number", "format": "float"}
    assert create["precise"] == {"type": "number", "format": "double"}
    assert create["enabled"] == {"type": "boolean"}
    assert create["blob"] == {"type": "string", "contentEncoding": "base64"}
    tag = schema.command_json_schema("tag")
    assert tag["required"] == ["tags"]
    assert tag["properties"]["owner"] == {"anyOf": [{"$ref": "#/$defs/Owner"}, {"type": "null"}]}
    assert tag["properties"]["scores"] == {
        "anyOf": [
            {
                "type": "array",
                "items": {"type": "array", "items": {"anyOf": [INT32, {"type": "null"}]}},
            },
            {"type": "null"},
        ]
    }
    # Owner reaches Note: both are defined, in declaration order.
    assert list(tag["$defs"]) == ["Owner", "Note"]
    assert tag["$defs"]["Note"]["additionalProperties"] is False
    assert "$defs" not in schema.command_json_schema("create")


def test_reference_template_for_openapi_components() -> None:
    schema = parse_file(SCHEMAS / "everything.esdl")
    template = "#/components/schemas/{name}"
    tag = schema.command_json_schema("tag", ref_template=template)
    assert "$defs" not in tag
    assert tag["properties"]["owner"]["anyOf"][0] == {"$ref": "#/components/schemas/Owner"}
    types = schema.types_json_schema(ref_template=template)
    assert list(types) == ["Owner", "Note"]
    assert types["Owner"]["properties"]["history"]["items"] == {"$ref": "#/components/schemas/Note"}


def test_unknown_names() -> None:
    schema = parse_file(SCHEMAS / "counter.esdl")
    with pytest.raises(UnknownCommand):
        schema.command_json_schema("explode")
    with pytest.raises(PayloadInvalid, match="unknown event type 'Exploded'"):
        schema.event_json_schema("Exploded")


def test_public_names_are_all_exported() -> None:
    for name in thalo.esdl.__all__:
        assert hasattr(thalo.esdl, name), name
    public = {n for n in vars(thalo.esdl) if not n.startswith("_")} - {"annotations"}
    modules = {
        "codegen",
        "checker",
        "diagnostics",
        "diff",
        "model",
        "parser",
        "printer",
        "validator",
        "jsonschema",
    }
    assert public - modules == set(thalo.esdl.__all__)
