"""Clients for ``thalo serve``: ``Client`` (blocking) and ``AsyncClient`` (asyncio), over httpx.

Both speak the API of docs/http.md and nothing else: they import no store, no
wasm host and no server code, only ``thalo.core`` values and ``thalo.errors``.
A problem answer is raised as the very ``ThaloError`` class the server raised
(``ThaloError.from_problem``), a connection failure as ``ServerUnavailable``.
The twins share request building and answer parsing (``_Api``); only sending,
sleeping and iterating differ.
"""

from __future__ import annotations

__all__ = ["AsyncClient", "Client", "CommandResult", "Submission"]

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx
import orjson

from thalo.client.sse import SSEDecoder
from thalo.core.message import Message
from thalo.core.state import EntityState
from thalo.core.stream_name import is_category
from thalo.errors import (
    CommandTimeout,
    ServerError,
    ServerUnavailable,
    ThaloError,
    UsageError,
)

# The server closes idle keep-alive connections after 5 s; drop ours first, so a
# request never races the server's close on a pooled connection.
_KEEPALIVE_EXPIRY = 4.0
# Server-Sent Events carry a keep-alive comment every 15 s: four missed ones mean
# the connection is dead even if no socket error says so.
_STREAM_READ_TIMEOUT = 60.0
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 2.0
_MAX_WAIT = 60.0  # the server's cap on ``?wait=``
_PENDING_PAUSE = 0.05
_PUBLISH_TIMEOUT = 300.0  # publishing compiles the component on the server
_RETRYABLE = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command recorded: its stream, the stream version after it, and the events.

    ``duplicate`` is true when the idempotency key had been seen: the events are
    those the first execution recorded, and the command did not run again.
    """

    aggregate: str
    entity_id: str
    command: str
    stream_name: str
    version: int
    duplicate: bool
    events: list[Message]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommandResult:
        """Read the server's 200 answer to a command (docs/http.md, "Commands")."""
        return cls(
            str(data["aggregate"]),
            str(data["id"]),
            str(data["command"]),
            str(data["stream_name"]),
            int(data["version"]),
            bool(data["duplicate"]),
            [Message.from_dict(m) for m in data["events"]],
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form again (``id`` for the entity id), JSON-ready."""
        return {
            "aggregate": self.aggregate,
            "id": self.entity_id,
            "command": self.command,
            "stream_name": self.stream_name,
            "version": self.version,
            "duplicate": self.duplicate,
            "events": [m.to_dict() for m in self.events],
        }


@dataclass(frozen=True, slots=True)
class Submission:
    """A command written to its command stream for a runner; ``location`` is where to wait."""

    aggregate: str
    entity_id: str
    command: str
    message_id: str
    stream_name: str
    position: int
    reply_stream_name: str | None
    location: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], location: str) -> Submission:
        """Read the server's 202 answer to ``?async=true`` and its ``Location``."""
        reply = data.get("reply_stream_name")
        return cls(
            str(data["aggregate"]),
            str(data["id"]),
            str(data["command"]),
            str(data["message_id"]),
            str(data["stream_name"]),
            int(data["position"]),
            None if reply is None else str(reply),
            location,
        )


@dataclass(frozen=True, slots=True)
class _Request:
    """One HTTP request, described before either client sends it."""

    method: str
    path: str
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    timeout: float | None = None
    ok: tuple[int, ...] = (200,)


def _segment(value: str) -> str:
    """A path segment with everything but unreserved characters escaped."""
    return quote(value, safe="")


def _seconds(value: float) -> str:
    """Seconds as a short decimal for a query parameter (``?wait=2.5``)."""
    return f"{max(value, 0.0):.3f}".rstrip("0").rstrip(".")


def _ascii_header(name: str, value: str, *, secret: bool = False) -> str:
    """``value`` if it can travel in an HTTP header; a secret is never echoed in the error."""
    if not value.isascii():
        shown = "" if secret else f", got {value!r}"
        raise UsageError(f"{name} must be ASCII text{shown}")
    return value


class _Api:
    """What both clients share: the base URL, headers, request building, answer parsing."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"the server URL must be http://host:port or https://…, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": "thalo-client"}
        if token:
            self._headers["Authorization"] = (
                f"Bearer {_ascii_header('the token', token, secret=True)}"
            )

    def __repr__(self) -> str:  # never shows the token
        return f"{type(self).__name__}({self.url!r})"

    # --- requests ---------------------------------------------------------------

    def _command_request(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None,
        command_id: str | None,
        expected_version: int | None,
        metadata: Mapping[str, Any] | None,
        *,
        submit: bool,
    ) -> _Request:
        headers = {"Content-Type": "application/json"}
        if command_id is not None:
            headers["Idempotency-Key"] = _ascii_header("the command id", command_id)
        if expected_version is not None:
            headers["If-Match"] = f'"{int(expected_version)}"'
        if metadata is not None:
            # ensure_ascii: a header value is ASCII; the server reads the escapes back.
            headers["Thalo-Metadata"] = json.dumps(dict(metadata), separators=(",", ":"))
        path = (
            f"/aggregates/{_segment(aggregate)}/{_segment(entity_id)}/commands/{_segment(command)}"
        )
        return _Request(
            "POST",
            path,
            params={"async": "true"} if submit else None,
            headers=headers,
            content=orjson.dumps(dict(payload or {})),
            ok=(202,) if submit else (200,),
        )

    def _wait_request(self, submission: Submission, wait: float) -> _Request:
        return _Request(
            "GET",
            submission.location,
            params={"wait": _seconds(wait)},
            timeout=wait + self.timeout,
            ok=(200, 202),
        )

    def _state_request(
        self,
        aggregate: str,
        entity_id: str,
        at_position: int | None,
        at_time: datetime | str | None,
        module_version: str | None = None,
    ) -> _Request:
        if at_position is not None and at_time is not None:
            raise UsageError("give at_position or at_time, not both")
        params: dict[str, str] = {}
        if module_version is not None:
            params["module"] = module_version
        if at_position is not None:
            params["position"] = str(int(at_position))
        if at_time is not None:
            params["time"] = at_time.isoformat() if isinstance(at_time, datetime) else at_time
        return _Request("GET", f"/aggregates/{_segment(aggregate)}/{_segment(entity_id)}", params)

    def _stream_request(self, stream_name: str, position: int, batch_size: int) -> _Request:
        params = {"position": str(position), "batch_size": str(batch_size)}
        return _Request("GET", f"/streams/{_segment(stream_name)}", params)

    def _category_request(
        self,
        category: str,
        position: int,
        batch_size: int,
        correlation: str | None,
        consumer_group_member: int | None,
        consumer_group_size: int | None,
    ) -> _Request:
        params = {"position": str(position), "batch_size": str(batch_size)}
        if correlation is not None:
            params["correlation"] = correlation
        if consumer_group_member is not None:
            params["consumer_group_member"] = str(consumer_group_member)
        if consumer_group_size is not None:
            params["consumer_group_size"] = str(consumer_group_size)
        return _Request("GET", f"/categories/{_segment(category)}", params)

    def _publish_request(
        self, schema_text: str, wasm: bytes, source_digest: str | None, allow_breaking: bool
    ) -> _Request:
        files = {
            "schema": ("schema.esdl", schema_text.encode("utf-8"), "text/plain; charset=utf-8"),
            "module": ("module.wasm", bytes(wasm), "application/wasm"),
        }
        if source_digest is not None:
            files["source_digest"] = ("source_digest", source_digest.encode(), "text/plain")
        timeout = max(self.timeout, _PUBLISH_TIMEOUT)
        params = {"allow_breaking": "true"} if allow_breaking else None
        return _Request("POST", "/modules", params, files=files, timeout=timeout, ok=(200, 201))

    def _modules_request(self, name: str | None) -> _Request:
        return _Request("GET", "/modules" if name is None else f"/modules/{_segment(name)}")

    def _compatibility_request(self, schema_text: str, allow_breaking: bool) -> _Request:
        params = {"allow_breaking": "true"} if allow_breaking else None
        body = orjson.dumps({"schema": schema_text})
        return _Request(
            "POST",
            "/modules/compatibility",
            params,
            headers={"content-type": "application/json"},
            content=body,
        )

    def _retire_request(self, name: str, version: str) -> _Request:
        return _Request("POST", f"/modules/{_segment(name)}/{_segment(version)}/retire")

    # --- answers ----------------------------------------------------------------

    def _unreachable(self, exc: httpx.HTTPError) -> ServerUnavailable:
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnavailable(
                f"the thalo server at {self.url} did not answer in time "
                f"({type(exc).__name__}): is it overloaded or stuck?"
            )
        return ServerUnavailable(
            f"cannot reach the thalo server at {self.url}: {exc or type(exc).__name__} "
            "(is `thalo serve` running there?)"
        )

    def _error(self, response: httpx.Response) -> ThaloError:
        """The error a non-2xx answer describes: its problem's class, else a ``ServerError``."""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            return ThaloError.from_problem(body)
        text = response.text.strip().replace("\n", " ")[:200]
        return ServerError(
            f"the thalo server at {self.url} answered HTTP {response.status_code} "
            f"to {response.request.method} {response.request.url.path}"
            + (f": {text}" if text else "")
        )

    def _checked(self, request: _Request, response: httpx.Response) -> httpx.Response:
        if response.status_code not in request.ok:
            raise self._error(response)
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ServerError(
                f"the thalo server at {self.url} answered {response.status_code} "
                f"to {response.request.method} {response.request.url.path} with a body "
                "that is not JSON"
            ) from None

    def _submission(self, response: httpx.Response) -> Submission:
        location = response.headers.get("Location")
        if not location:
            raise ServerError(f"the thalo server at {self.url} accepted a command without Location")
        return Submission.from_dict(self._json(response), location)

    def _waited(
        self, submission: Submission, response: httpx.Response, time_left: bool
    ) -> CommandResult | None:
        """The outcome in a reply poll's answer; ``None`` while the command is pending."""
        if response.status_code == 200:
            # The submission names the command, should the answer leave that out.
            known = {
                "aggregate": submission.aggregate,
                "id": submission.entity_id,
                "command": submission.command,
            }
            return CommandResult.from_dict({**known, **self._json(response)})
        if response.status_code == 202:
            return None
        error = self._error(response)
        if isinstance(error, CommandTimeout) and time_left:
            return None  # the server gave up on its wait, not the caller's
        raise error

    def _timed_out(self, submission: Submission, timeout: float) -> CommandTimeout:
        return CommandTimeout(
            f"no runtime executed {submission.command} for {submission.aggregate} "
            f"{submission.entity_id!r} within {timeout:g} s: is a `thalo serve` runner or "
            f"`thalo run` consuming {submission.stream_name}?"
        )

    def _messages(self, response: httpx.Response) -> list[Message]:
        return [Message.from_dict(m) for m in self._json(response)["messages"]]

    def _module_list(self, response: httpx.Response, name: str | None) -> list[dict[str, Any]]:
        """The records of ``GET /modules``, those of ``name`` only when given.

        Filtering here (not ``GET /modules/{name}``) answers an unknown name with
        no records, exactly as the local registry does.
        """
        records: list[dict[str, Any]] = self._json(response)["modules"]
        return records if name is None else [r for r in records if r.get("name") == name]

    def _stream_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=max(self.timeout, _STREAM_READ_TIMEOUT))


class _Feed:
    """One subscription's progress: where it is, how to resume, and when to give up.

    Messages are deduplicated by their position (global position for a
    category), so a server resending after a reconnect never shows twice.
    """

    def __init__(
        self,
        api: _Api,
        name: str,
        position: int | None,
        category: bool | None,
        give_up_after: float,
    ) -> None:
        self.api = api
        self.name = name
        self.category = is_category(name) if category is None else category
        route = "categories" if self.category else "streams"
        self.path = f"/{route}/{_segment(name)}"
        self.position = position
        self.give_up_after = give_up_after
        self.last: int | None = None
        self.decoder = SSEDecoder()
        self.failing_since: float | None = None
        self.failures = 0

    def request(self) -> _Request:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        params: dict[str, str] = {}
        if self.last is not None:
            headers["Last-Event-ID"] = str(self.last)
        elif self.position is not None:
            params["position"] = str(self.position)
        return _Request("GET", self.path, params=params, headers=headers)

    def opened(self, response: httpx.Response) -> str | None:
        """``None`` when the response is an event stream; else a retryable reason, or raise."""
        self.decoder.reset()  # what a lost connection left half-sent is not an event
        if response.status_code == 200:
            kind = response.headers.get("Content-Type", "")
            if kind.startswith("text/event-stream"):
                return None
            raise ServerError(
                f"the thalo server at {self.api.url} answered {self.path} with {kind!r}, "
                "not an event stream"
            )
        if response.status_code in _RETRYABLE:
            return f"HTTP {response.status_code}"
        raise self.api._error(response)

    def line(self, line: str) -> Message | None:
        """Feed one line; the new message it completes, if any."""
        self.failing_since, self.failures = None, 0  # the connection works
        event = self.decoder.feed(line)
        if event is None or event.event != "message":
            return None
        try:
            message = Message.from_dict(orjson.loads(event.data))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ServerError(
                f"the thalo server at {self.api.url} sent an event that is not a message: {exc}"
            ) from None
        key = message.global_position if self.category else message.position
        if self.last is not None and key <= self.last:
            return None
        self.last = key
        return message

    def failed(self, reason: str) -> float:
        """Count a lost or refused connection: the pause before the next try, or raise."""
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        elif now - self.failing_since > self.give_up_after:
            raise ServerUnavailable(
                f"lost the event stream of {self.name} from {self.api.url} and could not "
                f"resume it within {self.give_up_after:g} s ({reason})"
            )
        self.failures += 1
        first = _FIRST_BACKOFF if self.decoder.retry is None else self.decoder.retry / 1000
        return float(min(_MAX_BACKOFF, first * 2 ** min(self.failures - 1, 16)))


class Client(_Api):
    """A blocking client for ``thalo serve`` with a keep-alive connection pool.

    ``Client(url, token)`` — use it as a context manager, or call ``close()``.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        super().__init__(url, token, timeout)
        self._http = httpx.Client(
            base_url=self.url,
            headers=self._headers,
            timeout=timeout,
            limits=httpx.Limits(keepalive_expiry=_KEEPALIVE_EXPIRY),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def _send(self, request: _Request) -> httpx.Response:
        try:
            response = self._http.request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                content=request.content,
                files=request.files,
                timeout=self.timeout if request.timeout is None else request.timeout,
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return response

    def _call(self, request: _Request) -> httpx.Response:
        return self._checked(request, self._send(request))

    def execute(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        expected_version: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        """Run ``command`` on an entity now; the events it recorded.

        ``command_id`` is the idempotency key, ``expected_version`` the stream
        version the caller expects (-1: no events yet; stale raises
        ``WrongExpectedVersion``), ``metadata`` is merged into each event's.
        """
        request = self._command_request(
            aggregate,
            entity_id,
            command,
            payload,
            command_id,
            expected_version,
            metadata,
            submit=False,
        )
        return CommandResult.from_dict(self._json(self._call(request)))

    def submit(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        expected_version: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Submission:
        """Write ``command`` to its command stream for a runner; ``wait`` for the outcome."""
        request = self._command_request(
            aggregate,
            entity_id,
            command,
            payload,
            command_id,
            expected_version,
            metadata,
            submit=True,
        )
        return self._submission(self._call(request))

    def wait(self, submission: Submission, *, timeout: float = 30.0) -> CommandResult:
        """The outcome of a submitted command: its result, its error, or ``CommandTimeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            request = self._wait_request(submission, min(max(remaining, 0.0), _MAX_WAIT))
            result = self._waited(submission, self._send(request), remaining > 0)
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(submission, timeout)
            time.sleep(min(_PENDING_PAUSE, remaining))

    def state(
        self,
        aggregate: str,
        entity_id: str,
        *,
        at_position: int | None = None,
        at_time: datetime | str | None = None,
        module_version: str | None = None,
    ) -> EntityState:
        """An entity's state now, after the event at ``at_position``, or as of ``at_time``;
        replayed by ``module_version`` when given (see ``Runtime.state``)."""
        request = self._state_request(aggregate, entity_id, at_position, at_time, module_version)
        return EntityState.from_dict(self._json(self._call(request)))

    def stream(self, stream_name: str, position: int = 0, batch_size: int = 1000) -> list[Message]:
        """At most ``batch_size`` messages of one stream, from stream ``position``."""
        return self._messages(self._call(self._stream_request(stream_name, position, batch_size)))

    def category(
        self,
        category: str,
        position: int = 1,
        batch_size: int = 1000,
        *,
        correlation: str | None = None,
        consumer_group_member: int | None = None,
        consumer_group_size: int | None = None,
    ) -> list[Message]:
        """At most ``batch_size`` messages of a category, from global ``position``."""
        request = self._category_request(
            category,
            position,
            batch_size,
            correlation,
            consumer_group_member,
            consumer_group_size,
        )
        return self._messages(self._call(request))

    def subscribe(
        self,
        stream_or_category: str,
        *,
        position: int | None = None,
        category: bool | None = None,
        give_up_after: float = 60.0,
    ) -> Generator[Message, None, None]:
        """Every message of a stream or category from ``position`` on, following live.

        A name without ``-`` is a category unless ``category`` says otherwise.
        After a dropped connection or the end of the stream it reconnects with
        ``Last-Event-ID`` (backing off), so each message shows once and in order;
        it raises ``ServerUnavailable`` after ``give_up_after`` seconds without a
        working connection. Close the iterator (or leave the loop) to stop.
        """
        feed = _Feed(self, stream_or_category, position, category, give_up_after)
        while True:
            request = feed.request()
            try:
                with self._http.stream(
                    request.method,
                    request.path,
                    params=request.params,
                    headers=request.headers,
                    timeout=self._stream_timeout(),
                ) as response:
                    if response.status_code != 200:
                        response.read()
                    reason = feed.opened(response)
                    if reason is None:
                        for line in response.iter_lines():
                            message = feed.line(line)
                            if message is not None:
                                yield message
                        reason = "the server ended the stream"
            except httpx.HTTPError as exc:
                reason = str(self._unreachable(exc))
            time.sleep(feed.failed(reason))

    def publish(
        self,
        schema_text: str,
        wasm: bytes,
        source_digest: str | None = None,
        *,
        allow_breaking: bool = False,
    ) -> dict[str, Any]:
        """Publish an aggregate (ESDL text and component bytes); needs the admin token.

        ``source_digest`` (``thalo.wasm.build.source_digest``) makes publishing
        the same source under the same version again a no-op; ``allow_breaking``
        publishes even what the compatibility check refuses.
        """
        request = self._publish_request(schema_text, wasm, source_digest, allow_breaking)
        record: dict[str, Any] = self._json(self._call(request))
        return record

    def modules(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every published module version (of ``name`` when given; none if unknown)."""
        return self._module_list(self._call(self._modules_request(None)), name)

    def module(self, name: str) -> dict[str, Any]:
        """One aggregate's versions, latest ESDL and JSON Schemas (``GET /modules/{name}``)."""
        body: dict[str, Any] = self._json(self._call(self._modules_request(name)))
        return body

    def compatibility(self, schema_text: str, *, allow_breaking: bool = False) -> dict[str, Any]:
        """The compatibility check a publish of ``schema_text`` runs, before any build
        (admin token): ``{"diff", "rendered"}``, or ``IncompatibleSchema`` when refused."""
        request = self._compatibility_request(schema_text, allow_breaking)
        outcome: dict[str, Any] = self._json(self._call(request))
        return outcome

    def retire(self, name: str, version: str) -> dict[str, Any]:
        """Stop new commands on ``name`` ``version``; its retired record. Needs the admin
        token; idempotent; ``ModuleNotFound`` when that version is not published."""
        record: dict[str, Any] = self._json(self._call(self._retire_request(name, version)))
        return record

    def gc(self) -> dict[str, int]:
        """Remove component bytes no version references (admin token): what was removed
        and what the registry keeps, as ``thalo modules gc --json`` prints them."""
        figures: dict[str, int] = self._json(self._call(_Request("POST", "/modules/gc")))
        return figures

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: the process is up."""
        body: dict[str, Any] = self._json(self._call(_Request("GET", "/healthz")))
        return body

    def ready(self) -> dict[str, Any]:
        """``GET /readyz``: the store answers and the registry can be read (else raises)."""
        body: dict[str, Any] = self._json(self._call(_Request("GET", "/readyz")))
        return body


class AsyncClient(_Api):
    """The asyncio twin of ``Client``: the same methods, awaited.

    Use it as an async context manager, or ``await close()``. Close a
    ``subscribe`` iterator you leave early with ``contextlib.aclosing``.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        super().__init__(url, token, timeout)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=self._headers,
            timeout=timeout,
            limits=httpx.Limits(keepalive_expiry=_KEEPALIVE_EXPIRY),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def _send(self, request: _Request) -> httpx.Response:
        try:
            response = await self._http.request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                content=request.content,
                files=request.files,
                timeout=self.timeout if request.timeout is None else request.timeout,
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return response

    async def _call(self, request: _Request) -> httpx.Response:
        return self._checked(request, await self._send(request))

    async def execute(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        expected_version: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        """Run ``command`` on an entity now; the events it recorded (see ``Client.execute``)."""
        request = self._command_request(
            aggregate,
            entity_id,
            command,
            payload,
            command_id,
            expected_version,
            metadata,
            submit=False,
        )
        return CommandResult.from_dict(self._json(await self._call(request)))

    async def submit(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        expected_version: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Submission:
        """Write ``command`` to its command stream for a runner; ``wait`` for the outcome."""
        request = self._command_request(
            aggregate,
            entity_id,
            command,
            payload,
            command_id,
            expected_version,
            metadata,
            submit=True,
        )
        return self._submission(await self._call(request))

    async def wait(self, submission: Submission, *, timeout: float = 30.0) -> CommandResult:
        """The outcome of a submitted command: its result, its error, or ``CommandTimeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            request = self._wait_request(submission, min(max(remaining, 0.0), _MAX_WAIT))
            result = self._waited(submission, await self._send(request), remaining > 0)
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(submission, timeout)
            await asyncio.sleep(min(_PENDING_PAUSE, remaining))

    async def state(
        self,
        aggregate: str,
        entity_id: str,
        *,
        at_position: int | None = None,
        at_time: datetime | str | None = None,
        module_version: str | None = None,
    ) -> EntityState:
        """An entity's state now, after the event at ``at_position``, or as of ``at_time``;
        replayed by ``module_version`` when given (see ``Runtime.state``)."""
        request = self._state_request(aggregate, entity_id, at_position, at_time, module_version)
        return EntityState.from_dict(self._json(await self._call(request)))

    async def stream(
        self, stream_name: str, position: int = 0, batch_size: int = 1000
    ) -> list[Message]:
        """At most ``batch_size`` messages of one stream, from stream ``position``."""
        request = self._stream_request(stream_name, position, batch_size)
        return self._messages(await self._call(request))

    async def category(
        self,
        category: str,
        position: int = 1,
        batch_size: int = 1000,
        *,
        correlation: str | None = None,
        consumer_group_member: int | None = None,
        consumer_group_size: int | None = None,
    ) -> list[Message]:
        """At most ``batch_size`` messages of a category, from global ``position``."""
        request = self._category_request(
            category,
            position,
            batch_size,
            correlation,
            consumer_group_member,
            consumer_group_size,
        )
        return self._messages(await self._call(request))

    async def subscribe(
        self,
        stream_or_category: str,
        *,
        position: int | None = None,
        category: bool | None = None,
        give_up_after: float = 60.0,
    ) -> AsyncGenerator[Message, None]:
        """Every message of a stream or category from ``position`` on, following live.

        Reconnects with ``Last-Event-ID`` like ``Client.subscribe``; each message
        shows once and in order.
        """
        feed = _Feed(self, stream_or_category, position, category, give_up_after)
        while True:
            request = feed.request()
            try:
                async with self._http.stream(
                    request.method,
                    request.path,
                    params=request.params,
                    headers=request.headers,
                    timeout=self._stream_timeout(),
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                    reason = feed.opened(response)
                    if reason is None:
                        async for line in response.aiter_lines():
                            message = feed.line(line)
                            if message is not None:
                                yield message
                        reason = "the server ended the stream"
            except httpx.HTTPError as exc:
                reason = str(self._unreachable(exc))
            await asyncio.sleep(feed.failed(reason))

    async def publish(
        self,
        schema_text: str,
        wasm: bytes,
        source_digest: str | None = None,
        *,
        allow_breaking: bool = False,
    ) -> dict[str, Any]:
        """Publish an aggregate (ESDL text and component bytes); needs the admin token.

        ``source_digest`` makes republishing the same source a no-op;
        ``allow_breaking`` publishes even what the compatibility check refuses.
        """
        request = self._publish_request(schema_text, wasm, source_digest, allow_breaking)
        record: dict[str, Any] = self._json(await self._call(request))
        return record

    async def modules(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every published module version (of ``name`` when given; none if unknown)."""
        return self._module_list(await self._call(self._modules_request(None)), name)

    async def module(self, name: str) -> dict[str, Any]:
        """One aggregate's versions, latest ESDL and JSON Schemas (``GET /modules/{name}``)."""
        body: dict[str, Any] = self._json(await self._call(self._modules_request(name)))
        return body

    async def compatibility(
        self, schema_text: str, *, allow_breaking: bool = False
    ) -> dict[str, Any]:
        """The compatibility check of a publish, before any build (see ``Client``)."""
        request = self._compatibility_request(schema_text, allow_breaking)
        outcome: dict[str, Any] = self._json(await self._call(request))
        return outcome

    async def retire(self, name: str, version: str) -> dict[str, Any]:
        """Stop new commands on ``name`` ``version``; its retired record (see ``Client.retire``)."""
        request = self._retire_request(name, version)
        record: dict[str, Any] = self._json(await self._call(request))
        return record

    async def gc(self) -> dict[str, int]:
        """Remove component bytes no version references (admin token); the figures."""
        figures: dict[str, int] = self._json(await self._call(_Request("POST", "/modules/gc")))
        return figures

    async def health(self) -> dict[str, Any]:
        """``GET /healthz``: the process is up."""
        body: dict[str, Any] = self._json(await self._call(_Request("GET", "/healthz")))
        return body

    async def ready(self) -> dict[str, Any]:
        """``GET /readyz``: the store answers and the registry can be read (else raises)."""
        body: dict[str, Any] = self._json(await self._call(_Request("GET", "/readyz")))
        return body
