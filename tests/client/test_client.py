"""``thalo.client.Client`` against the real ``thalo serve``, over real HTTP (docs/http.md)."""

from __future__ import annotations

import http.server
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import unique
from serving import ADMIN_TOKEN, Served, free_port, serving

from thalo.client import Client, CommandResult, Submission
from thalo.core import Message
from thalo.errors import (
    CommandRejected,
    CommandTimeout,
    Forbidden,
    ModuleNotFound,
    ModuleRetired,
    PayloadInvalid,
    SchemaError,
    ServerError,
    ServerUnavailable,
    ThaloError,
    Unauthorized,
    UnknownAggregate,
    UnknownCommand,
    UsageError,
    VersionAlreadyPublished,
    Violation,
    WrongExpectedVersion,
)

pytestmark = pytest.mark.wasm


def increments(client: Client, entity: str, *amounts: int) -> list[CommandResult]:
    return [client.execute("Counter", entity, "increment", {"amount": a}) for a in amounts]


# --- commands ------------------------------------------------------------------


def test_execute_returns_the_recorded_events_and_the_version(client: Client) -> None:
    entity = unique("c")
    first = client.execute("Counter", entity, "increment", {"amount": 2})
    assert (first.aggregate, first.entity_id, first.command) == ("Counter", entity, "increment")
    assert (first.stream_name, first.version, first.duplicate) == (f"counter-{entity}", 0, False)
    [event] = first.events
    assert isinstance(event, Message)
    assert (event.type, event.position, event.data["count"]) == ("Incremented", 0, 2)
    assert event.stream_name == f"counter-{entity}" and event.global_position >= 1
    assert isinstance(event.time, datetime) and event.time.tzinfo is not None
    assert event.meta("thaloModuleVersion") == "0.1.0"

    second = client.execute("Counter", entity, "increment", {"amount": 3})
    assert second.version == 1 and second.events[0].data["count"] == 5
    assert second.events[0].global_position > event.global_position
    assert CommandResult.from_dict(second.to_dict()) == second


def test_an_idempotency_key_returns_the_first_events_as_a_duplicate(client: Client) -> None:
    entity, key = unique("c"), unique("cmd")
    first = client.execute("Counter", entity, "increment", {"amount": 2}, command_id=key)
    again = client.execute("Counter", entity, "increment", {"amount": 2}, command_id=key)
    assert not first.duplicate and again.duplicate
    assert again.events == first.events and again.version == first.version
    assert len(client.stream(f"counter-{entity}")) == 1


def test_expected_version_guards_the_stream(client: Client) -> None:
    entity = unique("c")
    client.execute("Counter", entity, "increment", {"amount": 1}, expected_version=-1)
    with pytest.raises(WrongExpectedVersion) as stale:
        client.execute("Counter", entity, "increment", {"amount": 1}, expected_version=-1)
    assert (stale.value.expected, stale.value.actual) == (-1, 0)
    assert stale.value.exit_code == 3
    done = client.execute("Counter", entity, "increment", {"amount": 1}, expected_version=0)
    assert done.version == 1
    assert [m.position for m in client.stream(f"counter-{entity}")] == [0, 1]


def test_metadata_is_merged_into_each_event(client: Client) -> None:
    entity = unique("c")
    meta = {"tenant": "acme", "note": "café ☕", "n": 3}
    result = client.execute("Counter", entity, "increment", {"amount": 1}, metadata=meta)
    assert result.events[0].metadata is not None
    assert {k: result.events[0].metadata[k] for k in meta} == meta


def test_refusals_arrive_as_the_runtime_s_own_errors(client: Client) -> None:
    entity = unique("c")
    with pytest.raises(CommandRejected) as rejected:
        client.execute("Counter", entity, "increment", {"amount": 0})
    error = rejected.value
    assert (error.aggregate, error.entity_id, error.command) == ("Counter", entity, "increment")
    assert "positive" in error.reason and error.exit_code == 1

    with pytest.raises(PayloadInvalid) as invalid:
        client.execute("Counter", entity, "increment", {"amount": "x"})
    assert invalid.value.exit_code == 2
    assert all(isinstance(v, Violation) for v in invalid.value.violations)
    assert "$.amount" in {v.path for v in invalid.value.violations}

    with pytest.raises(UnknownAggregate) as unknown:
        client.execute("Nope", entity, "increment", {"amount": 1})
    assert unknown.value.aggregate == "Nope"

    with pytest.raises(UnknownCommand) as no_command:
        client.execute("Counter", entity, "launch")
    assert (no_command.value.aggregate, no_command.value.command) == ("Counter", "launch")

    assert client.stream(f"counter-{entity}") == []


def test_odd_ids_travel_escaped_in_the_path(client: Client) -> None:
    entity = f"{unique('c')}+a?#%é&=;"
    result = client.execute("Counter", entity, "increment", {"amount": 1})
    assert result.entity_id == entity and result.stream_name == f"counter-{entity}"
    assert client.state("Counter", entity).version == 0
    assert [m.type for m in client.stream(f"counter-{entity}")] == ["Incremented"]


# --- async commands --------------------------------------------------------------


def test_submit_then_wait_for_the_runner(client: Client) -> None:
    entity, key = unique("c"), unique("cmd")
    submission = client.submit("Counter", entity, "increment", {"amount": 4}, command_id=key)
    assert isinstance(submission, Submission)
    assert submission.location.startswith("/replies/")
    assert (submission.aggregate, submission.entity_id) == ("Counter", entity)
    assert submission.stream_name == f"counter:command-{entity}"
    result = client.wait(submission, timeout=60)
    assert [(m.type, m.data["count"]) for m in result.events] == [("Incremented", 4)]
    assert result.stream_name == f"counter-{entity}"

    again = client.submit("Counter", entity, "increment", {"amount": 4}, command_id=key)
    assert again.location == submission.location
    assert client.wait(again, timeout=60).events == result.events
    assert len(client.stream(f"counter-{entity}")) == 1

    refused = client.submit("Counter", entity, "increment", {"amount": 0})
    with pytest.raises(CommandRejected) as rejected:
        client.wait(refused, timeout=60)
    assert "positive" in rejected.value.reason

    with pytest.raises(PayloadInvalid):
        client.submit("Counter", entity, "increment", {"amount": "x"})


def test_wait_raises_command_timeout_when_no_runner_answers(private_store: str) -> None:
    with (
        serving(private_store, "--no-runner", capture=True) as server,
        Client(server.url) as client,
    ):
        submission = client.submit("Counter", unique("c"), "increment", {"amount": 1})
        started = time.monotonic()
        with pytest.raises(CommandTimeout) as timed_out:
            client.wait(submission, timeout=1.0)
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 10, elapsed
    assert timed_out.value.exit_code == 5 and "increment" in timed_out.value.message


# --- reads -----------------------------------------------------------------------


def test_state_now_and_back_in_time(client: Client) -> None:
    entity = unique("c")
    results = increments(client, entity, 1, 2, 3)
    now = client.state("Counter", entity)
    assert (now.aggregate, now.entity_id, now.version) == ("Counter", entity, 2)
    assert now.module_version == "0.1.0" and now.state["count"] == 6

    assert client.state("Counter", entity, at_position=0).state["count"] == 1
    assert client.state("Counter", entity, at_position=1).version == 1
    second = results[1].events[0].time
    assert client.state("Counter", entity, at_time=second).state["count"] == 3
    assert client.state("Counter", entity, at_time=second.isoformat()).version == 1
    with pytest.raises(UsageError):
        client.state("Counter", entity, at_position=0, at_time=second)

    never = client.state("Counter", unique("c"))
    assert never.version == -1


def test_stream_pages(client: Client) -> None:
    entity = unique("c")
    increments(client, entity, 1, 1, 1, 1, 1)
    name = f"counter-{entity}"
    pages = [client.stream(name, position, 2) for position in (0, 2, 4, 6)]
    assert [[m.position for m in page] for page in pages] == [[0, 1], [2, 3], [4], []]
    assert [m.data["count"] for page in pages for m in page] == [1, 2, 3, 4, 5]
    with pytest.raises(ThaloError) as bad:
        client.stream(name, 0, 0)
    assert bad.value.exit_code == 2 and bad.value.http_status == 400


def test_category_pages_and_consumer_groups(client: Client) -> None:
    mine = {unique("c"), unique("c"), unique("c")}
    first = min(increments(client, e, 1, 2)[0].events[0].global_position for e in sorted(mine))
    seen: list[Message] = []
    position = first
    while True:
        page = client.category("counter", position, 2)
        assert len(page) <= 2
        if not page:
            break
        seen += page
        position = page[-1].global_position + 1
    ours = [m for m in seen if m.stream_name.removeprefix("counter-") in mine]
    assert len(ours) == 6
    globals_ = [m.global_position for m in seen]
    assert globals_ == sorted(set(globals_))

    members = [
        client.category("counter", first, 1000, consumer_group_member=n, consumer_group_size=2)
        for n in range(2)
    ]
    ids = [{m.global_position for m in part} for part in members]
    assert not ids[0] & ids[1]
    assert ids[0] | ids[1] == {m.global_position for m in client.category("counter", first)}


# --- subscriptions ---------------------------------------------------------------


def test_subscribe_follows_a_stream_live(client: Client) -> None:
    entity = unique("c")
    increments(client, entity, 1, 2)
    feed = client.subscribe(f"counter-{entity}")
    try:
        got = [next(feed), next(feed)]
        increments(client, entity, 3)  # recorded while the stream is open
        got.append(next(feed))
    finally:
        feed.close()
    assert [(m.position, m.data["count"]) for m in got] == [(0, 1), (1, 3), (2, 6)]


def test_subscribe_to_a_category_from_a_position(client: Client) -> None:
    entity = unique("c")
    start = increments(client, entity, 5)[0].events[0].global_position
    feed = client.subscribe("counter", position=start)  # no '-': a category
    try:
        first = next(feed)
        increments(client, entity, 6)
        later = next(m for m in feed if m.stream_name == f"counter-{entity}")
    finally:
        feed.close()
    assert (first.global_position, first.stream_name) == (start, f"counter-{entity}")
    assert later.data["count"] == 11 and later.global_position > start


class Cutter:
    """A TCP relay between a client and a server that can cut every connection at once.

    Cutting is what a dropped network does to a client: its connection ends in
    the middle of a response, without the server having finished it.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.sockets += [downstream, upstream]
            for pair in ((downstream, upstream, True), (upstream, downstream, False)):
                threading.Thread(target=self._pump, args=pair, daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                if record:
                    with self.lock:
                        self.requests.append(chunk)
                target.sendall(chunk)
        self._shut(source, target)
        source.close()  # each socket is the source of exactly one pump

    @staticmethod
    def _shut(*sockets: socket.socket) -> None:
        for s in sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """End every relayed connection now, in both directions."""
        with self.lock:
            self._shut(*self.sockets)
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_subscribe_resumes_after_a_cut_connection(server: Served, client: Client) -> None:
    entity = unique("c")
    increments(client, entity, 1, 1)
    relay = Cutter(int(server.url.rsplit(":", 1)[1]))
    try:
        with Client(relay.url) as through_relay:
            feed = through_relay.subscribe(f"counter-{entity}")
            got = [next(feed), next(feed)]
            relay.cut()
            increments(client, entity, 1, 1, 1)
            got += [next(feed) for _ in range(3)]
            feed.close()
    finally:
        relay.close()
    assert [m.position for m in got] == [0, 1, 2, 3, 4]
    assert [m.data["count"] for m in got] == [1, 2, 3, 4, 5]
    resumed = b"".join(relay.requests).lower()
    assert resumed.count(b"get /streams/") >= 2 and b"last-event-id: 1\r\n" in resumed


def test_subscribe_resumes_across_a_server_restart(private_store: str) -> None:
    """Stopping the server ends the stream; the client retries until it is back, then resumes."""
    entity = unique("c")
    port = free_port()
    got: queue.Queue[Message | BaseException] = queue.Queue()

    def consume(client: Client) -> None:
        try:
            feed = client.subscribe(f"counter-{entity}", give_up_after=120)
            for _ in range(4):
                got.put(next(feed))
            feed.close()
        except BaseException as exc:  # handed to the test thread
            got.put(exc)

    with Client(f"http://127.0.0.1:{port}") as client:
        with serving(private_store, port=port, capture=True):
            increments(client, entity, 1, 1)
            reader = threading.Thread(target=consume, args=(client,), daemon=True)
            reader.start()
            before = [got.get(timeout=30), got.get(timeout=30)]
        time.sleep(1.0)  # the reader meets a refused connection a few times
        assert got.empty()
        with serving(private_store, port=port, capture=True):
            increments(client, entity, 1, 1)
            after = [got.get(timeout=60), got.get(timeout=60)]
        reader.join(timeout=30)
    messages = [*before, *after]
    assert all(isinstance(m, Message) for m in messages), messages
    assert [m.position for m in messages if isinstance(m, Message)] == [0, 1, 2, 3]
    assert got.empty()


def test_subscribe_gives_up_when_nothing_listens() -> None:
    with Client(f"http://127.0.0.1:{free_port()}") as client:
        started = time.monotonic()
        with pytest.raises(ServerUnavailable) as down:
            next(client.subscribe("counter-x", give_up_after=0.5))
    assert time.monotonic() - started < 10
    assert "counter-x" in down.value.message


# --- modules ---------------------------------------------------------------------


def test_modules_lists_what_is_published(client: Client) -> None:
    records = client.modules()
    assert ("Counter", "0.1.0") in {(r["name"], r["version"]) for r in records}
    [counter] = client.modules("Counter")
    assert counter["commands"] == ["increment", "decrement"]
    assert {"sha256", "size", "published_at", "events"} <= set(counter)
    assert client.modules("Nope") == []
    detail = client.module("Counter")
    assert detail["latest"] == "0.1.0" and "aggregate Counter" in detail["esdl"]
    assert set(detail["commands"]) == {"increment", "decrement"}


def test_publish_needs_the_admin_token(private_store: str, counter_v2: Any) -> None:
    with serving(private_store, capture=True) as server:
        for token in (None, "wrong"):
            with Client(server.url, token) as stranger, pytest.raises((Unauthorized, Forbidden)):
                stranger.publish(counter_v2.schema_text, counter_v2.wasm)
        with Client(server.url, server.admin_token) as admin:
            assert [r["version"] for r in admin.modules("Counter")] == ["0.1.0"]
            record = admin.publish(counter_v2.schema_text, counter_v2.wasm)
            assert (record["name"], record["version"]) == ("Counter", "0.2.0")
            assert record["commands"] == ["increment", "decrement"]
            assert [r["version"] for r in admin.modules("Counter")] == ["0.1.0", "0.2.0"]
            with pytest.raises(SchemaError):
                admin.publish("aggregate {", counter_v2.wasm)
            result = admin.execute("Counter", unique("c"), "increment", {"amount": 1})
            assert result.events[0].meta("thaloModuleVersion") == "0.2.0"


def test_publish_over_http_compares_the_source_digest_first(
    private_store: str, counter_v2: Any
) -> None:
    """``source_digest`` travels with the upload; no-ops and refusals never load the bytes."""
    source, other = "c" * 64, "d" * 64
    with (
        serving(private_store, capture=True) as server,
        Client(server.url, server.admin_token) as admin,
    ):
        record = admin.publish(counter_v2.schema_text, counter_v2.wasm, source)
        assert record["source_digest"] == source
        assert admin.publish(counter_v2.schema_text, b"not a component", source) == record
        with pytest.raises(VersionAlreadyPublished, match="built from other source") as e:
            admin.publish(counter_v2.schema_text, b"not a component", other)
        assert (e.value.exit_code, e.value.http_status) == (2, 409)
        with pytest.raises(UsageError, match="source_digest"):
            admin.publish(counter_v2.schema_text, counter_v2.wasm, "not-hex")
        listed = admin.modules("Counter")
        assert [(r["version"], r["source_digest"]) for r in listed] == [
            ("0.1.0", None),
            ("0.2.0", source),
        ]


def test_retire_and_gc_with_the_admin_token(private_store: str) -> None:
    with serving(private_store, capture=True) as server:
        with Client(server.url) as anonymous:
            with pytest.raises(Unauthorized):
                anonymous.retire("Counter", "0.1.0")
            with pytest.raises(Unauthorized):
                anonymous.gc()
            assert anonymous.modules("Counter")[0]["retired_at"] is None
        with Client(server.url, server.admin_token) as admin:
            entity = unique("c")
            admin.execute("Counter", entity, "increment", {"amount": 1})
            record = admin.retire("Counter", "0.1.0")
            assert record["retired_at"] is not None
            assert admin.modules("Counter") == [record]
            assert admin.retire("Counter", "0.1.0") == record
            with pytest.raises(ModuleRetired) as retired:
                admin.execute("Counter", entity, "increment", {"amount": 1})
            assert (retired.value.exit_code, retired.value.http_status) == (2, 409)
            with pytest.raises(ModuleNotFound, match=r"Counter 9\.9\.9 is not published"):
                admin.retire("Counter", "9.9.9")
            figures = admin.gc()
            assert set(figures) == {"removed", "freed_bytes", "blobs", "raw_bytes", "stored_bytes"}
            assert (figures["removed"], figures["freed_bytes"]) == (0, 0)
            assert figures["blobs"] >= 6 and 0 < figures["stored_bytes"] < figures["raw_bytes"]


def test_publish_without_an_admin_token_configured_is_refused(private_store: str) -> None:
    with serving(private_store, admin_token=None, capture=True) as server:
        client = Client(server.url, "x")
        with client, pytest.raises((Forbidden, Unauthorized)):
            client.publish('version = "9.0.0"', b"\0asm")


# --- failures --------------------------------------------------------------------


def test_nothing_listening_is_server_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, timeout=5) as client, pytest.raises(ServerUnavailable) as down:
        client.execute("Counter", "c-1", "increment", {"amount": 1})
    assert url in down.value.message and down.value.exit_code == 5


@contextmanager
def plain_http(status: int, body: bytes, kind: str) -> Iterator[str]:
    """A web server that is not thalo (say, a proxy's error page) answering every request."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_error_that_is_not_a_problem_is_a_server_error() -> None:
    page = b"<html>Bad Gateway</html>"
    with (
        plain_http(502, page, "text/html") as url,
        Client(url) as client,
        pytest.raises(ServerError) as failed,
    ):
        client.state("Counter", "c-1")
    assert "502" in failed.value.message and failed.value.exit_code == 5
    assert type(failed.value) is ServerError


def test_a_bad_url_or_token_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Client("localhost:4433")
    with pytest.raises(UsageError) as bad:
        Client("http://127.0.0.1:1", "sécret-token")
    assert "sécret" not in bad.value.message


def test_the_token_is_sent_as_a_bearer_and_never_shown(private_store: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# clients\nreader-secret-0123456789 Counter\n")
    with serving(private_store, "--token-file", str(tokens), capture=True) as server:
        with Client(server.url) as anonymous, pytest.raises(Unauthorized):
            anonymous.state("Counter", "c-1")
        with Client(server.url, "reader-secret-0123456789") as reader:
            assert reader.execute("Counter", unique("c"), "increment", {"amount": 1}).version == 0
            with pytest.raises(Forbidden):
                reader.state("BankAccount", "a-1")
            assert "reader-secret-0123456789" not in repr(reader)
        with Client(server.url, ADMIN_TOKEN) as admin:  # the admin token may do anything
            assert admin.state("BankAccount", "a-1").version == -1


def test_health_and_ready(client: Client) -> None:
    assert client.health()["status"] == "ok"
    ready = client.ready()
    assert ready["status"] == "ready" and ready["modules"] >= 3


def test_importing_the_client_loads_no_heavy_layer() -> None:
    code = (
        "import sys, thalo.client;"
        "print(','.join(m for m in ('wasmtime', 'psycopg', 'starlette', 'uvicorn', 'lark',"
        " 'thalo.store', 'thalo.runtime', 'thalo.server', 'thalo.wasm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
