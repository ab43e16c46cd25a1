"""The OpenAPI 3.1 document of ``thalo serve``, generated from the published ESDL schemas.

Pure and cheap (no I/O, no validation library): the server rebuilds it whenever a
module is published, so that every command of every aggregate is its own operation
whose request body is the command's JSON Schema and whose 200 response lists
exactly the events that command can record (docs/http.md, "Operations").

Component names: ``Problem``, ``Message``… for the fixed shapes (no dot), and
``{Aggregate}.{Type}`` (custom types), ``{Aggregate}.{Event}`` (event data),
``{Aggregate}.{Event}.Message``, ``{Aggregate}.{command}`` (payload) and
``{Aggregate}.{command}.Result`` for each aggregate; ESDL's casing rules (CamelCase
types and events, snake_case commands) keep these apart.
"""

from __future__ import annotations

__all__ = ["OPENAPI_VERSION", "openapi_document"]

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thalo.esdl.model import Command, Schema

OPENAPI_VERSION = "3.1.0"

_SCHEMAS = "#/components/schemas/"
_INT32_MAX = 2**31 - 1
_PROBLEM_JSON = "application/problem+json"
_JSON = "application/json"

# HTTP status -> (component name, description), after docs/http.md's error table.
_ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "BadRequest",
        "Malformed JSON, a body that is not an object, bad parameters, invalid ESDL or "
        "module (`UsageError`, `SchemaError`, `InvalidModule`, `InvalidStreamName`, "
        "`InvalidStoreArgument`).",
    ),
    401: (
        "Unauthorized",
        "A token is needed and none or a wrong one was sent (`Unauthorized`).",
    ),
    403: (
        "Forbidden",
        "The token may not do this: another aggregate, a client token on an admin route "
        "(publish, retire, gc), or admin routes disabled (`Forbidden`).",
    ),
    404: (
        "NotFound",
        "Unknown aggregate, command, module or route (`UnknownAggregate`, `UnknownCommand`, "
        "`ModuleNotFound`, `NotFound`).",
    ),
    408: ("RequestTimeout", "The request body did not arrive within 10 s (`RequestTimeout`)."),
    409: (
        "Conflict",
        "The aggregate refused the command, retries could not resolve a lost race, or the "
        "module version is not greater or holds other source, or only retired versions would "
        "run the command (`CommandRejected`, `ConcurrencyExhausted`, `VersionNotGreater`, "
        "`VersionAlreadyPublished`, `ModuleRetired`).",
    ),
    412: (
        "PreconditionFailed",
        "`If-Match` is stale: nothing ran (`WrongExpectedVersion`).",
    ),
    413: ("PayloadTooLarge", "The body is over the cap (`PayloadTooLarge`)."),
    415: (
        "UnsupportedMediaType",
        "A body that is not JSON, or not multipart for `/modules` (`UnsupportedMediaType`).",
    ),
    422: ("PayloadInvalid", "The payload breaks the command's schema (`PayloadInvalid`)."),
    429: (
        "Overloaded",
        "More than `--max-inflight` commands in flight; retry after `Retry-After` (`Overloaded`).",
    ),
    500: (
        "InternalError",
        "The guest trapped, timed out, ran out of memory or returned output the host cannot "
        "use, or an unexpected server fault (`GuestTrap`, `GuestTimeout`, `GuestOutOfMemory`, "
        "`GuestOutputInvalid`, `ServerError`).",
    ),
    503: (
        "ServiceUnavailable",
        "The store cannot be reached (`StoreUnavailable`, with `Retry-After`) or the server "
        "is shutting down (`ServerUnavailable`).",
    ),
    504: ("GatewayTimeout", "An awaited async command got no answer (`CommandTimeout`)."),
}

# Which error statuses each kind of operation can answer (docs/http.md).
_COMMAND_ERRORS = (400, 401, 403, 404, 408, 409, 412, 413, 415, 422, 429, 500, 503)
_STATE_ERRORS = (400, 401, 403, 404, 500, 503)
_REPLY_ERRORS = (400, 401, 403, 404, 409, 412, 422, 500, 503, 504)
_READ_ERRORS = (400, 401, 403, 500, 503)
_PUBLISH_ERRORS = (400, 401, 403, 408, 409, 413, 415, 500, 503)
_LIST_ERRORS = (401, 403, 500, 503)
_CHECK_ERRORS = (400, 401, 403, 408, 409, 413, 415, 500, 503)
_MODULE_ERRORS = (401, 403, 404, 500, 503)


# --- small builders ------------------------------------------------------------


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _SCHEMAS + name}


def _param(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/parameters/{name}"}


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {_JSON: {"schema": schema}}


def _object(
    properties: dict[str, Any], *, required: Iterable[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A JSON object schema; every property is required unless ``required`` says otherwise."""
    names = list(properties) if required is None else list(required)
    return {"type": "object", **extra, "properties": properties, "required": names}


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _integer(**extra: Any) -> dict[str, Any]:
    return {"type": "integer", **extra}


def _token_security() -> list[dict[str, list[str]]]:
    """Open without a token file; with one, a client token (or the admin token) is needed."""
    return [{}, {"bearer": []}]


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    *,
    responses: dict[str, Any],
    errors: Sequence[int] = (),
    parameters: Sequence[dict[str, Any]] = (),
    request_body: dict[str, Any] | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    """An operation whose responses are sorted and end with the ``default`` problem."""
    answers = dict(responses)
    for status in errors:
        answers[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    answers["default"] = {"$ref": "#/components/responses/Problem"}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
    }
    if parameters:
        operation["parameters"] = list(parameters)
    if request_body is not None:
        operation["requestBody"] = request_body
    operation["responses"] = {key: answers[key] for key in sorted(answers)}
    if security is not None:
        operation["security"] = security
    return operation


@functools.cache
def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("thalo")
    except PackageNotFoundError:
        return "0"


# --- the fixed part: shapes, parameters, headers, responses ----------------------


def _message_schema() -> dict[str, Any]:
    return _object(
        {
            "id": _string(format="uuid"),
            "stream_name": _string(examples=["counter-c-1"]),
            "type": _string(examples=["Incremented"]),
            "position": _integer(minimum=0, description="0-based position in its stream."),
            "global_position": _integer(minimum=1, description="1-based, store-wide."),
            "data": {"type": "object"},
            "metadata": {
                "type": ["object", "null"],
                "examples": [{"thaloCommandId": "…", "thaloModuleVersion": "0.1.0"}],
            },
            "time": _string(format="date-time"),
        },
        title="Message",
        description="A recorded message, as the store records it.",
    )


def _result_schema(
    title: str,
    description: str,
    aggregate: dict[str, Any],
    command: dict[str, Any],
    events: dict[str, Any],
) -> dict[str, Any]:
    return _object(
        {
            "aggregate": aggregate,
            "id": _string(minLength=1),
            "command": command,
            "stream_name": _string(),
            "version": _integer(
                minimum=-1,
                description="The stream version after the command (-1: still no events); "
                "also the `ETag`.",
            ),
            "duplicate": {
                "type": "boolean",
                "description": "True when the `Idempotency-Key` had run before: these are "
                "the events its first execution recorded.",
            },
            "events": events,
        },
        title=title,
        description=description,
    )


def _reply_schema() -> dict[str, Any]:
    """What ``GET /replies/{reply_id}`` answers once a command ran: a command's result.

    Only the fields every runtime's reply carries are required (the server may answer
    ``"status": "done"`` without ``aggregate``, ``id`` and ``command``).
    """
    schema = _result_schema(
        "CommandResult",
        "What a command recorded.",
        _string(),
        _string(),
        {"type": "array", "items": _ref("Message")},
    )
    schema["properties"]["status"] = {"const": "done"}
    schema["required"] = ["stream_name", "version", "duplicate", "events"]
    return schema


def _fixed_schemas() -> dict[str, Any]:
    """The shapes that do not depend on any ESDL schema."""

    def any_schema() -> dict[str, Any]:
        return {"type": ["object", "boolean"], "description": "A JSON Schema (2020-12)."}

    record = _object(
        {
            "name": _string(),
            "version": _string(examples=["0.1.0"]),
            "sha256": _string(pattern="^[0-9a-f]{64}$"),
            "size": _integer(minimum=0),
            "published_at": _string(format="date-time"),
            "source_digest": {
                "type": ["string", "null"],
                "pattern": "^[0-9a-f]{64}$",
                "description": "sha256 of the source the component was built from, if known.",
            },
            "retired_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the version was retired (it serves no new commands).",
            },
            "commands": {"type": "array", "items": _string()},
            "events": {"type": "array", "items": _string()},
        },
        title="ModuleRecord",
        description="One published module version.",
    )

    def count(description: str) -> dict[str, Any]:
        return _integer(minimum=0, description=description)

    return {
        "CommandResult": _reply_schema(),
        "CommandSubmission": _object(
            {
                "status": {"const": "submitted"},
                "aggregate": _string(),
                "id": _string(),
                "command": _string(),
                "message_id": _string(format="uuid"),
                "stream_name": _string(description="The command stream it was written to."),
                "position": _integer(
                    minimum=-1,
                    description="Its position in the command stream; -1 when the same "
                    "Idempotency-Key was submitted before (nothing new was written).",
                ),
                "reply_stream_name": _string(),
                "location": _string(description="Where to wait for the outcome."),
            },
            title="CommandSubmission",
            description="An async command written to its command stream for a runner.",
        ),
        "EntityState": _object(
            {
                "aggregate": _string(),
                "id": _string(),
                "version": _integer(minimum=-1),
                "module_version": _string(description="The module version that replayed it."),
                "module_chosen_by": {
                    "enum": ["newest", "history", "request"],
                    "description": "Why that version: the newest; the one that wrote the "
                    "last event replayed (a past state); the one asked for (?module=).",
                },
                "state": {"description": "The state as the guest snapshots it."},
                "written_by": {
                    "type": "array",
                    "description": "A past state only: which module versions wrote the "
                    "events replayed (their thaloModuleVersion; null where absent).",
                    "items": _object(
                        {
                            "module_version": {"type": ["string", "null"]},
                            "from": _integer(minimum=0),
                            "to": _integer(minimum=0),
                        }
                    ),
                },
            },
            required=["aggregate", "id", "version", "module_version", "module_chosen_by", "state"],
            title="EntityState",
        ),
        "Health": _object({"status": {"const": "ok"}}, title="Health"),
        "Message": _message_schema(),
        "Messages": _object(
            {
                "messages": {"type": "array", "items": _ref("Message")},
                "next_position": _integer(
                    minimum=0,
                    description="The position to ask for next (stream position for streams, "
                    "global position for categories).",
                ),
            },
            title="Messages",
        ),
        "ModuleGarbage": _object(
            {
                "removed": count("Components removed: no version referenced them."),
                "freed_bytes": count("The bytes they took."),
                "blobs": count("Distinct components the registry keeps."),
                "raw_bytes": count("Their size uncompressed."),
                "stored_bytes": count("The bytes they take (compressed, as deltas)."),
            },
            title="ModuleGarbage",
            description="What garbage collection removed and what the registry keeps "
            "(`thalo modules gc --json`).",
        ),
        "SchemaCheck": _object(
            {"schema": _string(description="The ESDL text of the version to publish.")},
            title="SchemaCheck",
        ),
        "Compatibility": _object(
            {
                "diff": {
                    "oneOf": [{"type": "null"}, {"type": "object"}],
                    "description": "The diff against the newest published version, field by "
                    "field (`thalo esdl diff --json`); null when nothing is published or "
                    "the version is not new.",
                },
                "rendered": {
                    "oneOf": [{"type": "null"}, {"type": "string"}],
                    "description": "The same diff as `thalo publish` prints it; null when "
                    "nothing changed.",
                },
            },
            title="Compatibility",
        ),
        "ModuleDetail": _object(
            {
                "name": _string(),
                "latest": _string(description="The latest version."),
                "versions": {"type": "array", "items": _ref("ModuleRecord")},
                "esdl": _string(description="The latest version's ESDL text."),
                "commands": {"type": "object", "additionalProperties": any_schema()},
                "events": {"type": "object", "additionalProperties": any_schema()},
            },
            title="ModuleDetail",
        ),
        "ModuleList": _object(
            {"modules": {"type": "array", "items": _ref("ModuleRecord")}}, title="ModuleList"
        ),
        "ModuleRecord": record,
        "ModuleUpload": _object(
            {
                "schema": _string(
                    format="binary", contentMediaType="text/plain", description="ESDL text."
                ),
                "module": _string(
                    format="binary",
                    contentMediaType="application/wasm",
                    description="The component bytes.",
                ),
                "source_digest": _string(
                    pattern="^[0-9a-f]{64}$",
                    description="sha256 of the project source (`thalo publish` sends it): "
                    "the same source under a published version is a no-op.",
                ),
            },
            required=["schema", "module"],
            title="ModuleUpload",
        ),
        "Problem": _object(
            {
                "type": _string(
                    format="uri-reference", examples=["urn:thalo:problem:command-rejected"]
                ),
                "title": _string(),
                "status": _integer(minimum=100, maximum=599),
                "detail": _string(),
                "instance": _string(format="uri-reference"),
                "code": _string(
                    description="The `ThaloError` class name.", examples=["CommandRejected"]
                ),
                "exit_code": _integer(description="The CLI's exit code for this error."),
            },
            required=("type", "title", "status", "code"),
            title="Problem",
            description="RFC 9457 problem details; the error's own fields follow "
            "(`violations`, `expected`, `actual`…).",
            additionalProperties=True,
        ),
        "ReplyPending": _object(
            {"status": {"const": "pending"}},
            title="ReplyPending",
            description="No runtime has answered yet.",
        ),
        "Readiness": _object(
            {"status": {"const": "ready"}, "modules": _integer(minimum=0)}, title="Readiness"
        ),
    }


def _parameters() -> dict[str, Any]:
    def path(name: str, description: str) -> dict[str, Any]:
        schema = _string(minLength=1)
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": schema,
        }

    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description, "schema": schema}

    def header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "header", "description": description, "schema": schema}

    batch = _integer(minimum=1, maximum=10_000, default=1000)
    return {
        "AllowBreaking": query(
            "allow_breaking",
            "Publish even a version whose events would not read those stored (see the "
            "compatibility check in docs/design.md).",
            {"type": "boolean", "default": False},
        ),
        "Async": query(
            "async",
            "Write the command to its command stream for a runner and answer 202.",
            {"type": "boolean", "default": False},
        ),
        "BatchSize": query("batch_size", "How many messages at most.", batch),
        "Category": path("category", "A category, maybe with types (`counter:command`)."),
        "CategoryPosition": query(
            "position", "The global position to start at.", _integer(minimum=0, default=1)
        ),
        "ConsumerGroupMember": query(
            "consumer_group_member",
            "This reader's member number.",
            _integer(minimum=0, maximum=_INT32_MAX),
        ),
        "ConsumerGroupSize": query(
            "consumer_group_size",
            "How many members the group has.",
            _integer(minimum=1, maximum=_INT32_MAX),
        ),
        "Correlation": query(
            "correlation",
            "Only messages whose `correlationStreamName` is of this category.",
            _string(minLength=1),
        ),
        "EntityId": path("id", "The entity id."),
        "IdempotencyKey": header(
            "Idempotency-Key",
            "The command id: a repeated key returns the events the first execution recorded "
            '(`"duplicate": true`); the command never runs twice.',
            _string(minLength=1, maxLength=255, pattern="^[\\x21-\\x7e][\\x20-\\x7e]*$"),
        ),
        "IfMatch": header(
            "If-Match",
            'The stream version the caller expects (`"-1"`: no events yet); stale → 412.',
            _string(examples=['"7"', '"-1"'], pattern='^(W/)?"-?[0-9]{1,18}"$'),
        ),
        "LastEventId": header(
            "Last-Event-ID",
            "Server-Sent Events: resume right after this id (overrides `position`).",
            _string(pattern="^[0-9]{1,18}$"),
        ),
        "ModuleName": path("name", "The aggregate name."),
        "ModuleVersion": path("version", "A published version of the module (`0.1.0`)."),
        "ReplyId": path("reply_id", "The reply id from the 202 `Location`."),
        "StatePosition": query(
            "position", "The state after the event at this position.", _integer(minimum=0)
        ),
        "StateTime": query("time", "The state as of this time.", _string(format="date-time")),
        "StateModule": query(
            "module",
            "Replay with this published module version (default: now the newest; in the "
            "past, the version that wrote the last event replayed).",
            _string(minLength=1),
        ),
        "StreamName": path("stream_name", "A stream name (`counter-c-1`)."),
        "StreamPosition": query(
            "position", "The stream position to start at.", _integer(minimum=0, default=0)
        ),
        "ThaloMetadata": header(
            "Thalo-Metadata",
            "A JSON object merged into each event's metadata.",
            _string(
                contentMediaType=_JSON,
                contentSchema={"type": "object"},
                pattern="^\\{.*\\}$",
                examples=['{"userId": "u-7"}'],
            ),
        ),
        "Wait": query(
            "wait",
            "Seconds to wait for the outcome.",
            {"type": "number", "minimum": 0, "maximum": 60, "default": 0},
        ),
    }


def _headers() -> dict[str, Any]:
    return {
        "ETag": {
            "description": 'The stream version, quoted (`"7"`): the next `If-Match`.',
            "schema": _string(examples=['"7"']),
        },
        "Location": {"description": "Where the result is.", "schema": _string()},
        "RetryAfter": {
            "description": "Seconds to wait before trying again.",
            "schema": _integer(minimum=0),
        },
        "WWWAuthenticate": {"description": "`Bearer`.", "schema": _string()},
    }


def _responses() -> dict[str, Any]:
    problem = {_PROBLEM_JSON: {"schema": _ref("Problem")}}
    responses: dict[str, Any] = {
        "Problem": {"description": "An error, as RFC 9457 problem details.", "content": problem}
    }
    for status, (name, description) in _ERRORS.items():
        response: dict[str, Any] = {"description": description, "content": problem}
        if status == 401:
            response["headers"] = {"WWW-Authenticate": _header("WWWAuthenticate")}
        elif status in (429, 503):
            response["headers"] = {"Retry-After": _header("RetryAfter")}
        responses[name] = response
    return dict(sorted(responses.items()))


def _fixed_paths() -> dict[str, Any]:
    """The routes every server has, whatever is published."""

    def ok(description: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"200": {"description": description, "content": content, **extra}}

    def messages(description: str) -> dict[str, Any]:
        return ok(
            description,
            {
                **_json(_ref("Messages")),
                "text/event-stream": {
                    "schema": _string(
                        description="With `Accept: text/event-stream`: one event per message "
                        "(`id:` its position, `event: message`, `data:` the message JSON), "
                        "following live; a comment every 15 s keeps the connection alive."
                    )
                },
            },
        )

    read = [_param("BatchSize"), _param("LastEventId")]
    return {
        "/categories/{category}": {
            "get": _operation(
                "readCategory",
                "streams",
                "Read a category",
                "Messages of every stream of a category from a global position; "
                "`text/event-stream` follows live.",
                parameters=[
                    _param("Category"),
                    _param("CategoryPosition"),
                    *read,
                    _param("Correlation"),
                    _param("ConsumerGroupMember"),
                    _param("ConsumerGroupSize"),
                ],
                responses=messages("The messages and the global position to ask for next."),
                errors=_READ_ERRORS,
                security=_token_security(),
            )
        },
        "/docs": {
            "get": _operation(
                "docs",
                "operations",
                "API documentation",
                "This document rendered as HTML, offline.",
                responses=ok("The page.", {"text/html": {"schema": _string()}}),
            )
        },
        "/healthz": {
            "get": _operation(
                "healthz",
                "operations",
                "Liveness",
                "200 while the process is up.",
                responses=ok("Up.", _json(_ref("Health"))),
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "operations",
                "Prometheus metrics",
                "Requests, commands, latencies, cache, rebuilds, conflicts, guest faults, "
                "store writes, in Prometheus text format.",
                responses=ok("The metrics.", {"text/plain": {"schema": _string()}}),
            )
        },
        "/modules": {
            "get": _operation(
                "listModules",
                "modules",
                "List modules",
                "Every published version of every module.",
                responses=ok("The modules.", _json(_ref("ModuleList"))),
                errors=_LIST_ERRORS,
                security=_token_security(),
            ),
            "post": _operation(
                "publishModule",
                "modules",
                "Publish a module",
                "Publish an aggregate module (admin token): its ESDL schema and component.",
                parameters=[_param("AllowBreaking")],
                request_body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": _ref("ModuleUpload"),
                            "encoding": {
                                "module": {
                                    "contentType": "application/wasm, application/octet-stream"
                                },
                                "schema": {"contentType": "text/plain, application/octet-stream"},
                            },
                        }
                    },
                },
                responses={
                    "201": {
                        "description": "Published.",
                        "headers": {"Location": _header("Location")},
                        "content": _json(_ref("ModuleRecord")),
                    }
                },
                errors=_PUBLISH_ERRORS,
                security=[{"bearer": []}],
            ),
        },
        "/modules/gc": {
            "post": _operation(
                "collectModuleGarbage",
                "modules",
                "Collect garbage",
                "Remove component bytes no published version references (admin token); "
                "retired versions keep theirs.",
                responses=ok("Collected.", _json(_ref("ModuleGarbage"))),
                errors=_LIST_ERRORS,
                security=[{"bearer": []}],
            )
        },
        "/modules/compatibility": {
            "post": _operation(
                "checkModuleCompatibility",
                "modules",
                "Check a version before building it",
                "The compatibility check `POST /modules` runs, on the ESDL alone (admin token): "
                "the new version against the published ones and the event types stored. "
                "A breaking change nothing upcasts is 409 `IncompatibleSchema` unless "
                "`allow_breaking`; `thalo publish --url` asks this before it builds.",
                parameters=[_param("AllowBreaking")],
                request_body={"required": True, "content": _json(_ref("SchemaCheck"))},
                responses=ok("What a publish would accept.", _json(_ref("Compatibility"))),
                errors=_CHECK_ERRORS,
                security=[{"bearer": []}],
            )
        },
        "/modules/{name}/{version}/retire": {
            "post": _operation(
                "retireModule",
                "modules",
                "Retire a module version",
                "Stop new commands on this version (admin token): they run on the newest "
                "version not retired, or fail with `ModuleRetired`; it stays loadable for the "
                "history it wrote. Idempotent.",
                parameters=[_param("ModuleName"), _param("ModuleVersion")],
                responses=ok("Retired.", _json(_ref("ModuleRecord"))),
                errors=_MODULE_ERRORS,
                security=[{"bearer": []}],
            )
        },
        "/modules/{name}": {
            "get": _operation(
                "getModule",
                "modules",
                "Describe a module",
                "Its versions, latest ESDL and the JSON Schemas of its commands and events.",
                parameters=[_param("ModuleName")],
                responses=ok("The module.", _json(_ref("ModuleDetail"))),
                errors=_MODULE_ERRORS,
                security=_token_security(),
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "operations",
                "This document",
                "OpenAPI 3.1, generated from the published ESDL; follows new publications.",
                responses=ok("The document.", _json({"type": "object"})),
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "operations",
                "Readiness",
                "200 when the store answers and the registry can be read; 503 otherwise.",
                responses=ok("Ready.", _json(_ref("Readiness"))),
                errors=(503,),
            )
        },
        "/replies/{reply_id}": {
            "get": _operation(
                "getReply",
                "replies",
                "Outcome of an async command",
                "The command's result once a runtime executed it, its problem if it failed, "
                "or 202 while no runtime has answered within `wait`.",
                parameters=[_param("ReplyId"), _param("Wait")],
                responses={
                    **ok("The command ran.", _json(_ref("CommandResult"))),
                    "202": {
                        "description": "Still pending.",
                        "headers": {"Retry-After": _header("RetryAfter")},
                        "content": _json(_ref("ReplyPending")),
                    },
                },
                errors=_REPLY_ERRORS,
                security=_token_security(),
            )
        },
        "/streams/{stream_name}": {
            "get": _operation(
                "readStream",
                "streams",
                "Read a stream",
                "Messages of one stream from a position; `text/event-stream` follows live.",
                parameters=[_param("StreamName"), _param("StreamPosition"), *read],
                responses=messages("The messages and the stream position to ask for next."),
                errors=_READ_ERRORS,
                security=_token_security(),
            )
        },
    }


_FIXED_TAGS = (
    ("replies", "Outcomes of commands sent with `?async=true`."),
    ("streams", "Reading streams and categories, as JSON or Server-Sent Events."),
    ("modules", "Publishing, listing and retiring aggregate modules; collecting garbage."),
    ("operations", "Health, readiness, metrics and this documentation."),
)


# --- the generated part: one aggregate -------------------------------------------


def _signature(command: Command) -> str:
    """The command as ESDL writes it, e.g. ``increment(amount: Int) -> Incremented``."""
    params = ", ".join(f"{p.name}: {p.type}" for p in command.params)
    events = [e.name + ("?" if e.optional else "") for e in command.events]
    produced = f"({' | '.join(events)})" if command.event_set or len(events) != 1 else events[0]
    return f"{command.name}({params}) -> {produced}"


def _bare(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema document as a component: OpenAPI 3.1's dialect is already 2020-12."""
    schema.pop("$schema", None)
    return schema


def _put(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if name in components:
        raise ValueError(f"two OpenAPI components would be named {name!r}")
    components[name] = schema


def _aggregate(schema: Schema, paths: dict[str, Any], components: dict[str, Any]) -> None:
    """Add one aggregate's schemas, its command operations and its state route."""
    aggregate = schema.name
    template = f"{_SCHEMAS}{aggregate}.{{name}}"
    for name, definition in schema.types_json_schema(ref_template=template).items():
        _put(components, f"{aggregate}.{name}", definition)
    for event in schema.events:
        data = _bare(schema.event_json_schema(event, ref_template=template))
        _put(components, f"{aggregate}.{event}", data)
        envelope = _object({"type": {"const": event}, "data": _ref(f"{aggregate}.{event}")})
        _put(
            components,
            f"{aggregate}.{event}.Message",
            {"title": f"{aggregate}.{event}.Message", "allOf": [_ref("Message"), envelope]},
        )

    base = f"/aggregates/{aggregate}/{{id}}"
    paths[base] = {
        "get": _operation(
            f"{aggregate}.State",
            aggregate,
            f"{aggregate} state",
            f"The state of the {aggregate} entity `id` (module {schema.version}); `position` or "
            "`time` travel back in time, rebuilt from the stream.",
            parameters=[
                _param("EntityId"),
                _param("StatePosition"),
                _param("StateTime"),
                _param("StateModule"),
            ],
            responses={
                "200": {
                    "description": "The state; `ETag` is its stream version.",
                    "headers": {"ETag": _header("ETag")},
                    "content": _json(_ref("EntityState")),
                }
            },
            errors=_STATE_ERRORS,
            security=_token_security(),
        )
    }
    for name in sorted(schema.commands):
        command = schema.commands[name]
        payload = f"{aggregate}.{name}"
        _put(components, payload, _bare(schema.command_json_schema(name, ref_template=template)))
        kinds = sorted({e.name for e in command.events})
        events: dict[str, Any] = {"type": "array", "maxItems": len(kinds)}
        if kinds:
            events["items"] = {
                "oneOf": [_ref(f"{aggregate}.{kind}.Message") for kind in kinds],
                "discriminator": {
                    "propertyName": "type",
                    "mapping": {kind: f"{_SCHEMAS}{aggregate}.{kind}.Message" for kind in kinds},
                },
            }
        _put(
            components,
            f"{payload}.Result",
            _result_schema(
                f"{payload}.Result",
                f"What {payload} recorded.",
                {"const": aggregate},
                {"const": name},
                events,
            ),
        )
        signature = _signature(command)
        paths[f"{base}/commands/{name}"] = {
            "post": _operation(
                payload,
                aggregate,
                signature,
                f"Run `{signature}` on the {aggregate} entity `id` (module {schema.version}).",
                parameters=[
                    _param("EntityId"),
                    _param("IdempotencyKey"),
                    _param("IfMatch"),
                    _param("ThaloMetadata"),
                    _param("Async"),
                ],
                request_body={
                    # An empty body means {}: only required parameters make it required.
                    "required": any(not p.type.optional for p in command.params),
                    "content": _json(_ref(payload)),
                },
                responses={
                    "200": {
                        "description": "The events the command recorded; `ETag` is the "
                        "stream version after it.",
                        "headers": {"ETag": _header("ETag")},
                        "content": _json(_ref(f"{payload}.Result")),
                    },
                    "202": {
                        "description": "`?async=true`: submitted to the command stream; "
                        "`Location` is its reply.",
                        "headers": {"Location": _header("Location")},
                        "content": _json(_ref("CommandSubmission")),
                    },
                },
                errors=_COMMAND_ERRORS,
                security=_token_security(),
            )
        }


# --- the document ----------------------------------------------------------------


def openapi_document(
    schemas: Sequence[Schema], *, title: str = "thalo", version: str | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``schemas`` (the latest version of each aggregate).

    ``version`` defaults to the installed thalo's. Keys are sorted wherever order
    carries no meaning, so equal inputs give equal (and equally serialized) documents
    whatever the order of ``schemas``. Raises ValueError for two schemas of one aggregate.
    """
    ordered = sorted(schemas, key=lambda s: s.name)
    names = [s.name for s in ordered]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"one schema per aggregate, got several for {', '.join(dupes)}")

    paths = _fixed_paths()
    components = _fixed_schemas()
    for schema in ordered:
        _aggregate(schema, paths, components)

    published = ", ".join(f"{s.name} {s.version}" for s in ordered) or "none yet"
    tags = [
        {"name": s.name, "description": f"Commands and state of {s.name} (module {s.version})."}
        for s in ordered
    ]
    tags += [{"name": name, "description": text} for name, text in _FIXED_TAGS]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version if version is not None else _package_version(),
            "description": "The HTTP/JSON API of `thalo serve`: commands, entity states, "
            "streams and modules. Errors are RFC 9457 problem details "
            f"(`application/problem+json`). Published aggregates: {published}.",
        },
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "parameters": _parameters(),
            "headers": _headers(),
            "responses": _responses(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`POST /modules`, `POST /modules/compatibility`, "
                    "`POST /modules/{name}/{version}/retire` and `POST /modules/gc` need the "
                    "admin token. With `--token-file`, "
                    "command and read routes need one of its tokens (or the admin token); "
                    "without one they are open.",
                }
            },
        },
    }
