"""The OpenAPI document of ``thalo serve`` and the offline ``/docs`` page that renders it.

Built from the real example ESDL files, validated as OpenAPI 3.1, and checked
against each schema: every command is an operation with its own request schema and
exactly its own events in the 200 response.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

import thalo.server.openapi as openapi
from thalo.esdl import Schema, parse
from thalo.server.docs import docs_page
from thalo.server.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[2]
ESDL_FILES = [
    # The TypeScript examples (examples/*-ts) repeat their Python twins' schemas.
    *sorted(p for p in (ROOT / "examples").glob("*/*.esdl") if not p.parent.name.endswith("-ts")),
    ROOT / "tests" / "esdl" / "schemas" / "everything.esdl",
]
COMMAND_ERRORS = {400, 401, 403, 404, 408, 409, 412, 413, 415, 422, 429, 500, 503}
TOKEN_OPTIONAL: list[dict[str, list[str]]] = [{}, {"bearer": []}]
ADMIN_OPERATIONS = {
    ("/modules", "post"),
    ("/modules/{name}/{version}/retire", "post"),
    ("/modules/gc", "post"),
    ("/modules/compatibility", "post"),
}


@pytest.fixture(scope="module")
def schemas() -> list[Schema]:
    found = [parse(path.read_text(), str(path)) for path in ESDL_FILES]
    assert {s.name for s in found} >= {"BankAccount", "Counter", "Everything", "Todos"}
    return found


@pytest.fixture(scope="module")
def doc(schemas: list[Schema]) -> dict[str, Any]:
    return openapi_document(schemas)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer; KeyError if it leads nowhere."""
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def validator(doc: dict[str, Any], component: str) -> jsonschema.Draft202012Validator:
    """A JSON Schema validator for one component, resolving refs inside the document."""
    root = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def event_message(stream: str, event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "0c0f2b9e-6a3c-4a43-9d0e-5d3a8f1c2b7a",
        "stream_name": stream,
        "type": event,
        "position": 0,
        "global_position": 1,
        "data": data,
        "metadata": {"thaloCommandId": "k-1"},
        "time": "2026-12-01T08:15:38.123456+00:00",
    }


# --- the document as a whole -----------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    errors = [str(e.message) for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []


def test_the_document_with_no_aggregates_is_valid_and_has_the_fixed_routes() -> None:
    empty = openapi_document([])
    OpenAPIV31SpecValidator(empty).validate()
    assert not [p for p in empty["paths"] if p.startswith("/aggregates/")]
    assert "/streams/{stream_name}" in empty["paths"]


def test_the_document_is_json_and_every_ref_resolves(doc: dict[str, Any]) -> None:
    assert json.loads(json.dumps(doc)) == doc
    found = set(refs(doc))
    assert "#/components/schemas/Everything.Owner" in found
    for ref in found:
        resolve(doc, ref)  # raises KeyError for a dangling reference
    names = doc["components"]["schemas"]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in names)


def test_title_and_version(schemas: list[Schema]) -> None:
    from importlib.metadata import version

    assert openapi_document(schemas)["info"]["version"] == version("thalo")
    custom = openapi_document(schemas, title="bank", version="9.9.9")
    assert custom["info"]["title"] == "bank"
    assert custom["info"]["version"] == "9.9.9"


def test_the_document_is_deterministic(schemas: list[Schema]) -> None:
    first = json.dumps(openapi_document(schemas))
    shuffled = list(schemas)
    random.Random(7).shuffle(shuffled)
    assert shuffled != schemas
    assert json.dumps(openapi_document(list(reversed(schemas)))) == first
    assert json.dumps(openapi_document(shuffled)) == first
    doc = json.loads(first)
    assert list(doc["paths"]) == sorted(doc["paths"])
    assert list(doc["components"]["schemas"]) == sorted(doc["components"]["schemas"])
    for _, _, operation in operations(doc):
        assert list(operation["responses"]) == sorted(operation["responses"])


def test_building_does_not_mutate_the_result_of_earlier_builds(schemas: list[Schema]) -> None:
    first = openapi_document(schemas)
    snapshot = json.dumps(first)
    second = openapi_document(schemas)
    second["components"]["schemas"]["Problem"]["title"] = "changed"
    second["paths"]["/healthz"]["get"]["tags"].append("changed")
    assert json.dumps(first) == snapshot


def test_two_schemas_of_one_aggregate_are_refused(schemas: list[Schema]) -> None:
    with pytest.raises(ValueError, match="Counter"):
        openapi_document([*schemas, next(s for s in schemas if s.name == "Counter")])


# --- commands ----------------------------------------------------------------------------


def test_every_command_is_its_own_operation(doc: dict[str, Any], schemas: list[Schema]) -> None:
    expected = {
        f"/aggregates/{s.name}/{{id}}/commands/{name}": (s, name)
        for s in schemas
        for name in s.commands
    }
    commands = {p for p in doc["paths"] if "/commands/" in p}
    assert commands == set(expected)
    assert "/aggregates/Counter/{id}/commands/increment" in commands
    operation_ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(operation_ids) == len(set(operation_ids))
    for path, (schema, name) in expected.items():
        assert list(doc["paths"][path]) == ["post"]
        operation = doc["paths"][path]["post"]
        assert operation["operationId"] == f"{schema.name}.{name}"
        assert operation["tags"] == [schema.name]
        assert name in operation["summary"]
        assert schema.name in [tag["name"] for tag in doc["tags"]]


def test_each_request_body_is_the_commands_json_schema(
    doc: dict[str, Any], schemas: list[Schema]
) -> None:
    for schema in schemas:
        template = f"#/components/schemas/{schema.name}.{{name}}"
        for name, command in schema.commands.items():
            body = doc["paths"][f"/aggregates/{schema.name}/{{id}}/commands/{name}"]["post"]
            request = body["requestBody"]
            assert list(request["content"]) == ["application/json"]
            expected = schema.command_json_schema(name, ref_template=template)
            del expected["$schema"]
            assert deref(doc, request["content"]["application/json"]["schema"]) == expected
            # An empty body means {}: a command without required parameters needs none.
            assert request["required"] is any(not p.type.optional for p in command.params)
    bank = doc["paths"]["/aggregates/BankAccount/{id}/commands/close_account"]["post"]
    assert bank["requestBody"]["required"] is False
    deposit = doc["paths"]["/aggregates/BankAccount/{id}/commands/deposit_funds"]["post"]
    assert deposit["requestBody"]["required"] is True


def test_request_schemas_accept_good_payloads_and_refuse_bad_ones(doc: dict[str, Any]) -> None:
    increment = validator(doc, "Counter.increment")
    assert increment.is_valid({"amount": 2})
    assert not increment.is_valid({"amount": "2"})
    assert not increment.is_valid({"amount": 2**31})
    assert not increment.is_valid({})
    assert not increment.is_valid({"amount": 2, "extra": 1})
    tag = validator(doc, "Everything.tag")
    good = {"tags": ["a"], "owner": {"id": "o", "history": [{"text": "t"}]}, "scores": [[1, None]]}
    assert tag.is_valid(good)
    # The custom types Owner and Note are checked through their component references.
    assert not tag.is_valid({"tags": ["a"], "owner": {"id": "o", "history": [{"txt": "t"}]}})
    assert not tag.is_valid({"tags": ["a"], "owner": {"history": []}})


def test_custom_types_are_components_of_their_aggregate(
    doc: dict[str, Any], schemas: list[Schema]
) -> None:
    components = doc["components"]["schemas"]
    everything = next(s for s in schemas if s.name == "Everything")
    template = "#/components/schemas/Everything.{name}"
    for name, definition in everything.types_json_schema(ref_template=template).items():
        assert components[f"Everything.{name}"] == definition
    owner = components["Everything.Owner"]
    assert owner["properties"]["history"]["items"] == {"$ref": template.format(name="Note")}
    tag = deref(doc, {"$ref": "#/components/schemas/Everything.tag"})
    assert {"$ref": template.format(name="Owner")} in tag["properties"]["owner"]["anyOf"]


def test_each_200_lists_exactly_the_events_of_its_command(
    doc: dict[str, Any], schemas: list[Schema]
) -> None:
    for schema in schemas:
        for name, command in schema.commands.items():
            path = f"/aggregates/{schema.name}/{{id}}/commands/{name}"
            ok = doc["paths"][path]["post"]["responses"]["200"]
            assert "ETag" in ok["headers"]
            result = deref(doc, ok["content"]["application/json"]["schema"])
            fields = {"aggregate", "id", "command", "stream_name", "version", "duplicate"}
            assert set(result["required"]) == fields | {"events"}
            assert result["properties"]["aggregate"]["const"] == schema.name
            assert result["properties"]["command"]["const"] == name
            items = result["properties"]["events"]["items"]
            found = {}
            for alternative in items["oneOf"]:
                message = deref(doc, alternative)
                envelope = next(p for p in message["allOf"] if "properties" in p)
                found[envelope["properties"]["type"]["const"]] = envelope["properties"]["data"]
            assert set(found) == {e.name for e in command.events}
            for event, data in found.items():
                expected = schema.event_json_schema(
                    event, ref_template=f"#/components/schemas/{schema.name}.{{name}}"
                )
                del expected["$schema"]
                assert deref(doc, data) == expected
    counter = doc["components"]["schemas"]["Counter.increment.Result"]
    alternatives = counter["properties"]["events"]["items"]["oneOf"]
    assert alternatives == [{"$ref": "#/components/schemas/Counter.Incremented.Message"}]


def test_a_command_result_validates_only_with_its_own_events(doc: dict[str, Any]) -> None:
    result = validator(doc, "Counter.increment.Result")
    incremented = event_message("counter-c-1", "Incremented", {"amount": 2, "count": 2})
    body: dict[str, Any] = {
        "aggregate": "Counter",
        "id": "c-1",
        "command": "increment",
        "stream_name": "counter-c-1",
        "version": 0,
        "duplicate": False,
        "events": [incremented],
    }
    assert result.is_valid(body)
    wrong = dict(body, events=[event_message("counter-c-1", "Decremented", incremented["data"])])
    assert not result.is_valid(wrong)
    assert not result.is_valid(dict(body, command="decrement"))
    bad_data = dict(body, events=[event_message("counter-c-1", "Incremented", {"amount": 2})])
    assert not result.is_valid(bad_data)
    tag = validator(doc, "Everything.tag.Result")
    noted = event_message("everything-e", "Noted", {"notes": [{"text": "n"}, None]})
    tagged = event_message("everything-e", "Tagged", {"tags": []})
    assert tag.is_valid(
        {**body, "aggregate": "Everything", "command": "tag", "events": [tagged, noted]}
    )


def test_a_reply_is_a_command_result_or_pending(doc: dict[str, Any]) -> None:
    responses = doc["paths"]["/replies/{reply_id}"]["get"]["responses"]
    ref = responses["200"]["content"]["application/json"]["schema"]["$ref"]
    done = validator(doc, ref.removeprefix("#/components/schemas/"))
    message = event_message("counter-c-1", "Incremented", {"amount": 2, "count": 2})
    recorded = {"stream_name": "counter-c-1", "version": 0, "duplicate": False}
    assert done.is_valid({**recorded, "events": [message]})
    full = {"aggregate": "Counter", "id": "c-1", "command": "increment", "events": [message]}
    assert done.is_valid({**recorded, **full, "status": "done"})
    assert not done.is_valid({"status": "pending"})
    assert not done.is_valid({**recorded, "events": [{"type": "Incremented"}]})
    pending = validator(doc, "ReplyPending")
    assert pending.is_valid({"status": "pending"})
    assert "Retry-After" in responses["202"]["headers"]


def test_commands_take_the_documented_parameters(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/aggregates/Counter/{id}/commands/increment"]["post"]
    params = {(p["in"], p["name"]): p for p in (deref(doc, p) for p in operation["parameters"])}
    assert set(params) == {
        ("path", "id"),
        ("header", "Idempotency-Key"),
        ("header", "If-Match"),
        ("header", "Thalo-Metadata"),
        ("query", "async"),
    }
    assert params[("path", "id")]["required"] is True
    assert params[("path", "id")]["schema"] == {"type": "string", "minLength": 1}
    assert params[("query", "async")]["schema"]["type"] == "boolean"
    accepted = operation["responses"]["202"]
    assert "Location" in accepted["headers"]
    submission = deref(doc, accepted["content"]["application/json"]["schema"])
    assert submission["properties"]["status"] == {"const": "submitted"}
    assert {"message_id", "reply_stream_name", "position"} <= set(submission["required"])


def test_entities_have_a_state_route(doc: dict[str, Any], schemas: list[Schema]) -> None:
    for schema in schemas:
        operation = doc["paths"][f"/aggregates/{schema.name}/{{id}}"]["get"]
        assert operation["tags"] == [schema.name]
        params = {p["name"]: p for p in (deref(doc, p) for p in operation["parameters"])}
        assert params["position"]["in"] == "query"
        assert params["position"]["schema"]["minimum"] == 0
        assert params["time"]["schema"] == {"type": "string", "format": "date-time"}
        ok = operation["responses"]["200"]
        assert "ETag" in ok["headers"]
        state = deref(doc, ok["content"]["application/json"]["schema"])
        assert set(state["required"]) == {
            "aggregate",
            "id",
            "version",
            "module_version",
            "module_chosen_by",
            "state",
        }


# --- fixed routes, errors, security -----------------------------------------------------


def test_the_fixed_routes_are_documented(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    expected = {
        "/replies/{reply_id}": {"get"},
        "/streams/{stream_name}": {"get"},
        "/categories/{category}": {"get"},
        "/modules": {"get", "post"},
        "/modules/{name}": {"get"},
        "/modules/{name}/{version}/retire": {"post"},
        "/modules/gc": {"post"},
        "/modules/compatibility": {"post"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
        "/openapi.json": {"get"},
        "/docs": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert set(paths["/docs"]["get"]["responses"]["200"]["content"]) == {"text/html"}
    reply = paths["/replies/{reply_id}"]["get"]
    assert {"200", "202", "504"} <= set(reply["responses"])
    params = {p["name"]: p for p in (deref(doc, p) for p in reply["parameters"])}
    wait = params["wait"]
    assert (wait["schema"]["minimum"], wait["schema"]["maximum"]) == (0, 60)


@pytest.mark.parametrize("path", ["/streams/{stream_name}", "/categories/{category}"])
def test_streams_and_categories_answer_json_or_server_sent_events(
    doc: dict[str, Any], path: str
) -> None:
    operation = doc["paths"][path]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/event-stream"}
    page = deref(doc, content["application/json"]["schema"])
    assert set(page["required"]) == {"messages", "next_position"}
    params = {p["name"]: p for p in (deref(doc, p) for p in operation["parameters"])}
    size = params["batch_size"]["schema"]
    assert (size["minimum"], size["maximum"]) == (1, 10_000)
    assert params["position"]["schema"]["minimum"] >= 0
    assert "Last-Event-ID" in params
    if path.startswith("/categories"):
        assert {"correlation", "consumer_group_member", "consumer_group_size"} <= set(params)


def test_publishing_is_multipart_and_needs_the_admin_token(doc: dict[str, Any]) -> None:
    publish = doc["paths"]["/modules"]["post"]
    assert publish["security"] == [{"bearer": []}]
    media = publish["requestBody"]["content"]["multipart/form-data"]
    upload = deref(doc, media["schema"])
    assert set(upload["required"]) == {"schema", "module"}
    for part in ("schema", "module"):
        assert upload["properties"][part]["type"] == "string"
        assert upload["properties"][part]["format"] == "binary"
    created = publish["responses"]["201"]
    assert "Location" in created["headers"]
    assert {"400", "401", "403", "409", "413", "415"} <= set(publish["responses"])
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_retire_and_gc_need_the_admin_token_and_answer_their_shapes(doc: dict[str, Any]) -> None:
    for path, method in ADMIN_OPERATIONS:
        operation = doc["paths"][path][method]
        assert operation["security"] == [{"bearer": []}], path
        assert {"401", "403"} <= set(operation["responses"]), path
    retire = doc["paths"]["/modules/{name}/{version}/retire"]["post"]
    params = [deref(doc, p)["name"] for p in retire["parameters"]]
    assert params == ["name", "version"]
    assert "404" in retire["responses"]
    record = retire["responses"]["200"]["content"]["application/json"]["schema"]
    assert record == {"$ref": "#/components/schemas/ModuleRecord"}
    gc = doc["paths"]["/modules/gc"]["post"]
    figures = deref(doc, gc["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(figures["required"]) == {
        "removed",
        "freed_bytes",
        "blobs",
        "raw_bytes",
        "stored_bytes",
    }
    jsonschema.validate(
        {"removed": 1, "freed_bytes": 2, "blobs": 3, "raw_bytes": 4, "stored_bytes": 5}, figures
    )


def test_token_routes_declare_optional_bearer_and_open_routes_none(doc: dict[str, Any]) -> None:
    open_paths = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
    for path, method, operation in operations(doc):
        if path in open_paths:
            assert "security" not in operation, path
        elif (path, method) in ADMIN_OPERATIONS:
            continue
        else:
            assert operation["security"] == TOKEN_OPTIONAL, (path, method)
            assert {"401", "403"} <= set(operation["responses"]), path


def test_every_operation_documents_its_errors_as_problems(doc: dict[str, Any]) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "code", "exit_code"} <= set(
        problem["properties"]
    )
    assert problem.get("additionalProperties", True) is not False
    for path, method, operation in operations(doc):
        responses = operation["responses"]
        assert "default" in responses, (path, method)
        for status, response in responses.items():
            if status == "default" or int(status) >= 400:
                content = deref(doc, response)["content"]
                assert list(content) == ["application/problem+json"], (path, status)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
    command = doc["paths"]["/aggregates/Todos/{id}/commands/add_todo"]["post"]
    statuses = {int(s) for s in command["responses"] if s != "default"}
    assert statuses - {200, 202} == COMMAND_ERRORS
    unauthorized = deref(doc, command["responses"]["401"])
    assert "WWW-Authenticate" in unauthorized["headers"]
    assert "Retry-After" in deref(doc, command["responses"]["429"])["headers"]


def test_problem_schema_accepts_a_runtime_problem(doc: dict[str, Any]) -> None:
    from thalo.errors import CommandRejected

    problem = CommandRejected("Counter", "c-1", "decrement", "would go negative").to_problem()
    check = validator(doc, "Problem")
    assert check.is_valid(json.loads(json.dumps(problem)))
    assert not check.is_valid({"title": "no type, status or code"})


def test_building_is_cheap(schemas: list[Schema]) -> None:
    import time

    start = time.perf_counter()
    for _ in range(20):
        openapi_document(schemas)
    assert (time.perf_counter() - start) / 20 < 0.05


# --- the /docs page ----------------------------------------------------------------------


def test_docs_page_renders_openapi_json_offline() -> None:
    page = docs_page()
    assert page == docs_page()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "/openapi.json" in page
    assert "<script>" in page and "<style>" in page
    # Nothing from elsewhere: no URL with a scheme, no protocol-relative or external asset.
    assert not re.search(r"[a-z][a-z0-9+.-]*://", page, re.IGNORECASE)
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", page, re.IGNORECASE)
    assert not re.search(r"<script[^>]*\bsrc\s*=|<link\b|@import|url\(", page, re.IGNORECASE)


def test_modules_declare_their_public_names() -> None:
    import thalo.server.docs as docs

    assert openapi.__all__ == ["OPENAPI_VERSION", "openapi_document"]
    assert docs.__all__ == ["docs_page"]
