"""The ThaloError tree: every error thalo raises on purpose.

Errors carry structured fields and build their message from them. Each knows
the CLI exit code (shared/DESIGN.md, "Exit codes of the CLI") and the HTTP
status it maps to, so the interfaces never guess.

    ThaloError                        2 / 400
    ├── UsageError                    2 / 400   bad arguments, unknown names
    │   ├── UnknownAggregate          2 / 404
    │   ├── UnknownCommand            2 / 404
    │   ├── IdempotencyKeyReused      2 / 422   a command id reused for another command
    │   ├── NotFound                  2 / 404   no such HTTP route or resource
    │   ├── Unauthorized              2 / 401   a token is needed (HTTP)
    │   ├── Forbidden                 2 / 403   the token may not do this (HTTP)
    │   ├── RequestTimeout            2 / 408   the body did not arrive in time (HTTP)
    │   ├── PayloadTooLarge           2 / 413   a body over the server's cap (HTTP)
    │   └── UnsupportedMediaType      2 / 415   a body of the wrong content type (HTTP)
    ├── SchemaError                   2 / 400   ESDL that does not compile
    ├── PayloadInvalid                2 / 422   JSON that breaks the schema
    ├── CommandRejected               1 / 409   the aggregate refused (domain error)
    ├── StoreError                    5 / 503
    │   ├── StoreUnavailable          5 / 503   cannot connect / server refused
    │   ├── StoreURLInvalid           2 / 400   unknown scheme, malformed URL
    │   ├── StoreNotInitialized       2 / 400   schema / Message DB missing
    │   ├── InvalidStreamName         2 / 400
    │   ├── InvalidMessage            2 / 400   non-object data, unserializable metadata
    │   │   └── DuplicateMessageId    2 / 409   a message with that id is already recorded
    │   ├── InvalidStoreArgument      2 / 400   batch size, consumer group, correlation, condition
    │   └── WrongExpectedVersion      3 / 412   optimistic concurrency conflict
    ├── WasmError                     2 / 400
    │   ├── InvalidModule             2 / 400   not a component / wrong world / corrupt
    │   ├── BuildError                2 / 400   componentize-py or project config failed
    │   └── GuestError                4 / 500   the guest failed at run time
    │       ├── GuestTrap             4 / 500
    │       ├── GuestOutputInvalid    4 / 500   output the host cannot use (not stored)
    │       ├── GuestTimeout          4 / 500
    │       └── GuestOutOfMemory      4 / 500
    ├── RegistryError                 2 / 400
    │   ├── ModuleNotFound            2 / 404
    │   ├── VersionNotGreater         2 / 409
    │   ├── VersionAlreadyPublished   2 / 409   that version holds other source
    │   ├── ModuleRetired             2 / 409   only retired versions would serve
    │   └── IncompatibleSchema        2 / 409   a publish that would break stored events
    ├── ConcurrencyExhausted          3 / 409   retries could not resolve a conflict
    ├── CommandFailed                 as remote  a command from a command stream failed
    ├── CommandTimeout                5 / 504   no runtime answered a submitted command
    └── ServerError                   5 / 500   the HTTP server failed or cannot be reached
        ├── ServerUnavailable         5 / 503   connection refused, shutting down
        └── Overloaded                5 / 429   too many commands in flight; retry later

Over HTTP an error travels as an RFC 9457 problem (``to_problem``) and
``from_problem`` rebuilds the same class with the same fields on the client.

Foreign exceptions (sqlite3, psycopg, wasmtime) are translated once, at the
layer boundary, and chained with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "PROBLEM_TYPE_PREFIX",
    "BuildError",
    "CommandFailed",
    "CommandRejected",
    "CommandTimeout",
    "ConcurrencyExhausted",
    "DuplicateMessageId",
    "Forbidden",
    "GuestError",
    "GuestOutOfMemory",
    "GuestOutputInvalid",
    "GuestTimeout",
    "GuestTrap",
    "IdempotencyKeyReused",
    "IncompatibleSchema",
    "InvalidMessage",
    "InvalidModule",
    "InvalidStoreArgument",
    "InvalidStreamName",
    "ModuleNotFound",
    "ModuleRetired",
    "NotFound",
    "Overloaded",
    "PayloadInvalid",
    "PayloadTooLarge",
    "RegistryError",
    "RequestTimeout",
    "SchemaError",
    "ServerError",
    "ServerUnavailable",
    "SourceLocation",
    "StoreError",
    "StoreNotInitialized",
    "StoreURLInvalid",
    "StoreUnavailable",
    "ThaloError",
    "Unauthorized",
    "UnknownAggregate",
    "UnknownCommand",
    "UnsupportedMediaType",
    "UpcastFailed",
    "UsageError",
    "VersionAlreadyPublished",
    "VersionNotGreater",
    "Violation",
    "WasmError",
    "WrongExpectedVersion",
]

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

PROBLEM_TYPE_PREFIX = "urn:thalo:problem:"


class ThaloError(Exception):
    """Root of every error thalo raises deliberately."""

    exit_code: int = 2
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description, used by ``--json`` output."""
        return {"error": self.code, "message": self.message}

    @property
    def code(self) -> str:
        """The error's name on the wire: its class name."""
        return type(self).__name__

    def fields(self) -> dict[str, object]:
        """The error's structured fields (JSON-ready), beyond its message and codes."""
        return {
            name: _jsonable(value)
            for name, value in vars(self).items()
            if name not in _OWN and not name.startswith("_")
        }

    def to_problem(self) -> dict[str, object]:
        """The error as an RFC 9457 problem details object (docs/http.md, "Errors")."""
        code = self.code
        return {
            "type": PROBLEM_TYPE_PREFIX + _kebab(code),
            "title": _title(code),
            "status": self.http_status,
            "detail": self.message,
            "code": code,
            "exit_code": self.exit_code,
            **self.fields(),
        }

    @staticmethod
    def from_problem(problem: Mapping[str, Any]) -> ThaloError:
        """The error a problem details object describes, as the class that raised it.

        Unknown codes (a newer server) become a ``CommandFailed`` carrying the
        code, message, exit code and status, so nothing is lost.
        """
        code = str(problem.get("code") or "ThaloError")
        detail = str(problem.get("detail") or problem.get("title") or code)
        cls = _error_classes().get(code)
        if cls is None or cls is CommandFailed:
            return CommandFailed(
                code,
                detail,
                int(problem.get("exit_code", 2)),
                int(problem.get("status", 500)),
            )
        error = cls.__new__(cls)
        ThaloError.__init__(error, detail)
        for name, value in problem.items():
            if name in _PROBLEM_KEYS or not name.isidentifier():
                continue
            if name == "violations" and isinstance(value, list):
                value = tuple(
                    Violation(str(v.get("path", "")), str(v.get("message", "")))
                    for v in value
                    if isinstance(v, dict)
                )
            elif isinstance(value, list):
                value = tuple(value)
            setattr(error, name, value)
        return error


# --- usage -------------------------------------------------------------------


class UsageError(ThaloError):
    """The caller asked for something that cannot be done as asked."""


class UnknownAggregate(UsageError):
    http_status = 404

    def __init__(self, aggregate: str) -> None:
        super().__init__(f"unknown aggregate {aggregate!r}: no module of that name is published")
        self.aggregate = aggregate


class UnknownCommand(UsageError):
    http_status = 404

    def __init__(self, aggregate: str, command: str, known: tuple[str, ...] = ()) -> None:
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(f"aggregate {aggregate!r} has no command {command!r}{hint}")
        self.aggregate = aggregate
        self.command = command
        self.known = known


# --- schema ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A point in an ESDL source: 1-based line and column."""

    file: str
    line: int
    column: int


class SchemaError(ThaloError):
    """ESDL that does not parse or does not validate.

    ``diagnostics`` holds every error found (the parser goes on where it can);
    the message renders all of them compiler-style, with the source line and a
    caret.
    """

    def __init__(self, message: str, diagnostics: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a JSON value breaks the schema: where (a JSON path) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PayloadInvalid(ThaloError):
    """A command payload or an event's data does not match the schema."""

    http_status = 422

    def __init__(self, what: str, violations: tuple[Violation, ...]) -> None:
        lines = "\n".join(f"  {v}" for v in violations)
        super().__init__(f"{what} does not match the schema:\n{lines}")
        self.what = what
        self.violations = violations

    def to_dict(self) -> dict[str, object]:
        return {
            **super().to_dict(),
            "violations": [{"path": v.path, "message": v.message} for v in self.violations],
        }


# --- domain ------------------------------------------------------------------


class CommandRejected(ThaloError):
    """The aggregate refused the command: a domain decision, not a failure."""

    exit_code = 1
    http_status = 409

    def __init__(self, aggregate: str, entity_id: str, command: str, reason: str) -> None:
        super().__init__(f"{aggregate} {entity_id!r} rejected {command}: {reason}")
        self.aggregate = aggregate
        self.entity_id = entity_id
        self.command = command
        self.reason = reason


# --- store -------------------------------------------------------------------


class StoreError(ThaloError):
    """The message store failed."""

    exit_code = 5
    http_status = 503


class StoreUnavailable(StoreError):
    """The store cannot be reached or refused the connection."""


class StoreURLInvalid(StoreError):
    exit_code = 2
    http_status = 400


class StoreNotInitialized(StoreError):
    exit_code = 2
    http_status = 400


class InvalidStreamName(StoreError):
    exit_code = 2
    http_status = 400

    def __init__(self, stream_name: object, reason: str) -> None:
        super().__init__(f"invalid stream name {stream_name!r}: {reason}")
        self.stream_name = stream_name
        self.reason = reason


class InvalidMessage(StoreError):
    exit_code = 2
    http_status = 400


class DuplicateMessageId(InvalidMessage):
    """A message id is unique store-wide; this one is already recorded (nothing was written)."""

    http_status = 409

    def __init__(self, message_id: str, stream_name: str) -> None:
        super().__init__(
            f"message id {message_id} is already recorded; nothing was written to {stream_name!r}"
        )
        self.message_id = message_id
        self.stream_name = stream_name


class InvalidStoreArgument(StoreError):
    """A read or write argument outside its domain (Message DB's own error text when it has one)."""

    exit_code = 2
    http_status = 400


class WrongExpectedVersion(StoreError):
    """Optimistic concurrency: the stream is not at the version the writer expected.

    Over HTTP a stale ``If-Match`` (412 Precondition Failed).
    """

    exit_code = 3
    http_status = 412

    def __init__(self, stream_name: str, expected: int, actual: int) -> None:
        actual_text = "the stream does not exist" if actual == -1 else f"stream version is {actual}"
        super().__init__(
            f"wrong expected version for stream {stream_name!r}: "
            f"expected {expected}, but {actual_text}"
        )
        self.stream_name = stream_name
        self.expected = expected
        self.actual = actual


# --- wasm --------------------------------------------------------------------


class WasmError(ThaloError):
    """A WebAssembly module could not be built, loaded or run."""


class InvalidModule(WasmError):
    """The bytes are not a component implementing thalo's world."""


class BuildError(WasmError):
    """``thalo build`` could not produce a component."""


class GuestError(WasmError):
    """The guest failed while running; the instance was discarded."""

    exit_code = 4
    http_status = 500


class GuestTrap(GuestError):
    pass


class GuestOutputInvalid(GuestError):
    """The guest returned what the host cannot use: undecodable or misshapen JSON, events
    that break the schema, a snapshot that is not JSON. The guest's fault (exit 4), never
    the caller's; nothing of it is stored.
    """

    def __init__(self, message: str, violations: tuple[Violation, ...] = ()) -> None:
        lines = "".join(f"\n  {v}" for v in violations)
        super().__init__(message + lines)
        self.violations = violations


class GuestTimeout(GuestError):
    pass


class GuestOutOfMemory(GuestError):
    pass


# --- registry & runtime ------------------------------------------------------


class RegistryError(ThaloError):
    """Publishing or resolving a module failed."""


class ModuleNotFound(RegistryError):
    http_status = 404


class VersionNotGreater(RegistryError):
    http_status = 409

    def __init__(self, aggregate: str, version: str, latest: str) -> None:
        super().__init__(
            f"cannot publish {aggregate} {version}: it must be greater than the latest "
            f"published version {latest}"
        )
        self.aggregate = aggregate
        self.version = version
        self.latest = latest


class ModuleRetired(RegistryError):
    """New commands cannot run: the version that would serve them is retired."""

    http_status = 409

    def __init__(self, aggregate: str, version: str, live: list[str]) -> None:
        usable = f"versions not retired: {', '.join(live)}" if live else "every version is retired"
        super().__init__(
            f"{aggregate} {version} is retired: it serves no new commands, only history "
            f"replay ({usable}); publish a new version to run commands"
        )
        self.aggregate = aggregate
        self.version = version
        self.live = tuple(live)


class VersionAlreadyPublished(RegistryError):
    """The version is published already, built from other source: versions are immutable."""

    http_status = 409

    def __init__(self, aggregate: str, version: str, reason: str) -> None:
        super().__init__(
            f"cannot publish {aggregate} {version}: {version} is already published {reason}; "
            "a published version never changes, so publish the change under a greater version"
        )
        self.aggregate = aggregate
        self.version = version


class IncompatibleSchema(RegistryError):
    """A new version whose events would not read what the store holds: ``changes`` are the
    diff's lines (breaking ones marked ``!``); declare upcasting or allow the break."""

    http_status = 409

    def __init__(
        self, aggregate: str, version: str, against: str, changes: tuple[str, ...]
    ) -> None:
        lines = "".join(f"\n  {line}" for line in changes)
        super().__init__(
            f"cannot publish {aggregate} {version}: it breaks events stored under {against} "
            f"(lines marked !){lines}\nDeclare how old events become new ones (bump the "
            "event's version: `event Name version N`, with defaults for new fields or an "
            "upcast hook in the module), or publish with --allow-breaking."
        )
        self.aggregate = aggregate
        self.version = version
        self.against = against
        self.changes = changes


class UpcastFailed(IncompatibleSchema):
    """A new version that declares upcasting, yet an event stored by an older schema
    does not decode after its defaults and upcast hook: found at publish, not at replay."""

    def __init__(
        self,
        aggregate: str,
        version: str,
        against: str,
        event_type: str,
        stored_version: int,
        origin: str,
        reason: str,
    ) -> None:
        line = (
            f"! {event_type}: events stored at version {stored_version} do not decode after "
            f"upcasting ({origin}): {reason}"
        )
        ThaloError.__init__(
            self,
            f"cannot publish {aggregate} {version}: {line[2:]}\nGive the new fields ESDL "
            "defaults or fill them in the module's upcast hook, or publish with "
            "--allow-breaking.",
        )
        self.aggregate = aggregate
        self.version = version
        self.against = against
        self.changes = (line,)
        self.event_type = event_type
        self.stored_version = stored_version
        self.origin = origin
        self.reason = reason


class ConcurrencyExhausted(ThaloError):
    """Retries after concurrency conflicts did not succeed."""

    exit_code = 3
    http_status = 409


class CommandFailed(ThaloError):
    """A command sent through a command stream failed where it ran (in a ``thalo run``).

    Carries the remote error's class name, message and exit code, so the caller
    exits as if it had run the command itself.
    """

    def __init__(
        self,
        error: str,
        message: str,
        exit_code: int,
        http_status: int,
        fields: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.exit_code = exit_code
        self.http_status = http_status
        self.remote_fields = dict(fields or {})

    @property
    def code(self) -> str:
        return self.error

    def fields(self) -> dict[str, object]:
        return dict(self.remote_fields)


class CommandTimeout(ThaloError):
    """No runtime answered a submitted command in time (is ``thalo run`` running?)."""

    exit_code = 5
    http_status = 504


# --- HTTP --------------------------------------------------------------------


class IdempotencyKeyReused(UsageError):
    """A command id already used for another command of the entity (nothing ran)."""

    http_status = 422

    def __init__(
        self, command_id: str, stream_name: str, command: str, event_types: list[str]
    ) -> None:
        super().__init__(
            f"command id {command_id!r} was used before on {stream_name} for another command: "
            f"it recorded {', '.join(event_types)}, which {command} does not record; "
            "use a new id (Idempotency-Key) for a new command"
        )
        self.command_id = command_id
        self.stream_name = stream_name
        self.command = command
        self.event_types = tuple(event_types)


class NotFound(UsageError):
    """No such route or resource on the server."""

    http_status = 404


class Unauthorized(UsageError):
    """The server needs a bearer token and got none, or an unknown one."""

    http_status = 401


class Forbidden(UsageError):
    """The token is known but may not do this (another aggregate, or an admin route)."""

    http_status = 403


class RequestTimeout(UsageError):
    """The request body did not arrive within the server's time limit."""

    http_status = 408


class PayloadTooLarge(UsageError):
    """The request body is over the server's cap."""

    http_status = 413


class UnsupportedMediaType(UsageError):
    """The request body has a content type the route does not take."""

    http_status = 415


class ServerError(ThaloError):
    """The HTTP server failed unexpectedly (details are in its log, never in the reply)."""

    exit_code = 5
    http_status = 500


class ServerUnavailable(ServerError):
    """The server cannot be reached, or is shutting down."""

    http_status = 503


class Overloaded(ServerError):
    """Too many commands are in flight on the server; retry after a moment."""

    http_status = 429


# Attributes every error has; ``fields`` leaves them out.
_OWN = frozenset({"message", "exit_code", "http_status", "error", "remote_fields"})
_PROBLEM_KEYS = frozenset({"type", "title", "status", "detail", "code", "exit_code", "instance"})


def _jsonable(value: object) -> object:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if value is None or isinstance(value, str | int | float | bool | dict):
        return value
    return str(value)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _title(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).capitalize()


def _error_classes() -> dict[str, type[ThaloError]]:
    found: dict[str, type[ThaloError]] = {}
    todo: list[type[ThaloError]] = [ThaloError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found
