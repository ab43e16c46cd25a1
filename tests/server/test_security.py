"""Tokens, body caps, slow and malformed clients, CORS and the bind address of `thalo serve`."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from components import Built
from helpers import unique
from serving import ADMIN_TOKEN, JSON, Served, post, problem, serving

pytestmark = pytest.mark.wasm

ALL = "client-token-all-aaaaaaaa"
COUNTER_ONLY = "client-token-counter-bbbb"


@pytest.fixture(scope="module")
def sqlite_store(published_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    import shutil

    target = tmp_path_factory.mktemp("security") / "store.db"
    shutil.copyfile(published_sqlite, target)
    return f"sqlite:///{target.as_posix()}"


@pytest.fixture(scope="module")
def guarded(sqlite_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with a token file and small body caps."""
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    tokens.write_text(f"# clients\n{ALL}\n{COUNTER_ONLY} Counter\n")
    args = ("--token-file", str(tokens), "--max-body", "1KiB", "--max-module-size", "64KiB")
    with serving(sqlite_store, *args, "--body-timeout", "1", capture=True) as served:
        yield served


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_publishing_needs_the_admin_token(sqlite_store: str, counter_v2: Built) -> None:
    files: Any = {
        "schema": ("counter.esdl", counter_v2.schema_text.encode(), "text/plain"),
        "module": ("counter.wasm", counter_v2.wasm, "application/wasm"),
    }
    with serving(sqlite_store, "--max-module-size", "64MiB") as served:
        url = f"{served.url}/modules"
        missing = httpx.post(url, files=files, timeout=60)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        problem(missing, 401, "Unauthorized")
        problem(
            httpx.post(url, files=files, headers=bearer("wrong-token-cccccccc"), timeout=60),
            401,
            "Unauthorized",
        )
        commands = f"{served.url}/aggregates/Counter/{unique('c')}/commands/increment"
        before = httpx.post(commands, json={"amount": 1}, headers=served.admin_headers)
        assert before.json()["events"][0]["metadata"]["thaloModuleVersion"] == "0.1.0"
        published = httpx.post(url, files=files, headers=served.admin_headers, timeout=120)
        assert published.status_code == 201, published.text
        assert published.json()["version"] == "0.2.0"
        after = httpx.post(commands, json={"amount": 1}, headers=served.admin_headers)
        assert after.json()["events"][0]["metadata"]["thaloModuleVersion"] == "0.2.0"
        assert published.headers["location"] == "/modules/Counter"
        again = httpx.post(url, files=files, headers=served.admin_headers, timeout=120)
        assert again.status_code == 201  # the very same module: idempotent
        # the OpenAPI document follows the publication
        document = httpx.get(f"{served.url}/openapi.json").json()
        assert document["paths"]["/aggregates/Counter/{id}/commands/increment"]
        bad = httpx.post(
            url,
            files={"schema": ("x.esdl", b"aggregate {", "text/plain"), "module": ("m", b"x")},
            headers=served.admin_headers,
        )
        problem(bad, 400, "SchemaError")
        problem(
            httpx.post(url, files={"schema": ("x.esdl", b"x")}, headers=served.admin_headers),
            400,
            "UsageError",
        )
        problem(
            httpx.post(url, content=b"{}", headers={**served.admin_headers, **JSON}),
            415,
            "UnsupportedMediaType",
        )
    with serving(sqlite_store, admin_token=None) as served:
        refused = httpx.post(f"{served.url}/modules", files=files, headers=bearer(ADMIN_TOKEN))
        assert "--admin-token" in problem(refused, 403, "Forbidden")["detail"]


def test_a_limited_token_reads_only_replies_to_its_aggregates(guarded: Served) -> None:
    """Reply ids of keyed commands come from the key alone: a token limited to
    Counter must not read the reply to a BankAccount command that used the same key."""
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        replies = {}
        for token, aggregate, command, payload in (
            (ALL, "BankAccount", "open_account", {"initial_balance": 1}),
            (COUNTER_ONLY, "Counter", "increment", {"amount": 1}),
        ):
            accepted = http.post(
                f"/aggregates/{aggregate}/r-{token[-4:]}/commands/{command}?async=true",
                json=payload,
                headers={**bearer(token), "Idempotency-Key": f"shared-{token[-4:]}"},
            )
            assert accepted.status_code == 202, accepted.text
            replies[aggregate] = accepted.headers["location"]
        for location in replies.values():  # the admin sees both, once they are done
            done = http.get(f"{location}?wait=20", headers=bearer(ADMIN_TOKEN))
            assert done.json()["status"] == "done", done.text
        limited = bearer(COUNTER_ONLY)
        assert http.get(replies["Counter"], headers=limited).json()["status"] == "done"
        problem(http.get(replies["BankAccount"], headers=limited), 404, "NotFound")
        assert http.get(replies["BankAccount"], headers=bearer(ALL)).status_code == 200


def test_client_tokens_gate_commands_and_reads_by_aggregate(guarded: Served) -> None:
    with httpx.Client(base_url=guarded.url) as http:
        problem(post(http, "Counter", "t-1", "increment", {"amount": 1}), 401, "Unauthorized")
        problem(
            post(
                http,
                "Counter",
                "t-1",
                "increment",
                {"amount": 1},
                Authorization="Bearer nope-nope-nope-nope",
            ),
            401,
            "Unauthorized",
        )
        problem(
            post(http, "Counter", "t-1", "increment", {"amount": 1}, {"Authorization": "Basic a"}),
            401,
            "Unauthorized",
        )
        for token in (ALL, COUNTER_ONLY, ADMIN_TOKEN):
            ok = post(
                http, "Counter", "t-1", "increment", {"amount": 1}, Authorization=f"Bearer {token}"
            )
            assert ok.status_code == 200, ok.text
        limited = bearer(COUNTER_ONLY)
        problem(
            post(
                http,
                "BankAccount",
                "t-1",
                "open_account",
                {"initial_balance": 1},
                **{"Authorization": f"Bearer {COUNTER_ONLY}"},
            ),
            403,
            "Forbidden",
        )
        assert http.get("/aggregates/Counter/t-1", headers=limited).status_code == 200
        problem(http.get("/aggregates/BankAccount/t-1", headers=limited), 403, "Forbidden")
        assert http.get("/streams/counter-t-1", headers=limited).json()["messages"]
        assert http.get("/categories/counter:command", headers=limited).status_code == 200
        problem(http.get("/streams/bankAccount-t-1", headers=limited), 403, "Forbidden")
        problem(http.get("/categories/bankAccount", headers=limited), 403, "Forbidden")
        problem(http.get("/streams/counter-t-1"), 401, "Unauthorized")
        problem(http.get("/modules"), 401, "Unauthorized")
        assert http.get("/streams/bankAccount-t-1", headers=bearer(ALL)).status_code == 200
        # operational routes stay open
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
            assert http.get(path).status_code == 200, path
    log = "".join(guarded.log)
    assert ALL not in log and COUNTER_ONLY not in log and ADMIN_TOKEN not in log


def test_bodies_over_the_cap_are_refused(guarded: Served) -> None:
    with httpx.Client(base_url=guarded.url, headers=bearer(ALL)) as http:
        big = b'{"amount": 1, "pad": "' + b"x" * 2000 + b'"}'
        path = "/aggregates/Counter/cap-1/commands/increment"
        body = problem(http.post(path, content=big, headers=JSON), 413, "PayloadTooLarge")
        assert "1024" in body["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield big[:1000]
            yield big[1000:]

        problem(http.post(path, content=chunks(), headers=JSON), 413, "PayloadTooLarge")
        module = http.post(
            "/modules",
            files={"schema": ("c.esdl", b"x"), "module": ("c.wasm", b"\0" * 100_000)},
            headers=bearer(ADMIN_TOKEN),
        )
        problem(module, 413, "PayloadTooLarge")
        assert http.get("/streams/counter-cap-1").json()["messages"] == []


def _raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def test_slow_and_malformed_clients_hold_nothing(guarded: Served) -> None:
    port = int(guarded.url.rsplit(":", 1)[1])
    # a body that never finishes: 408 after --body-timeout (1 s)
    slow_body = _raw(
        port,
        b"POST /aggregates/Counter/slow-1/commands/increment HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + ALL.encode() + b"\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"amo',
    )
    # headers that never finish, and garbage
    slow_headers = [_raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(20)]
    garbage = _raw(port, b"\x16\x03\x01 this is not HTTP\r\n\r\n")
    started = time.monotonic()
    # meanwhile the server answers everyone else at once
    with httpx.Client(base_url=guarded.url, headers=bearer(ALL)) as http:
        for _ in range(20):
            assert post(http, "Counter", "slow-2", "increment", {"amount": 1}).status_code == 200
    assert time.monotonic() - started < 5
    answer = slow_body.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 408") and "RequestTimeout" in answer
    assert garbage.recv(65536).startswith(b"HTTP/1.1 400") or garbage.recv(1) == b""
    for sock in (slow_body, garbage, *slow_headers):
        sock.close()
    with httpx.Client(base_url=guarded.url, headers=bearer(ALL)) as http:
        assert http.get("/streams/counter-slow-1").json()["messages"] == []


def test_cors_is_off_unless_origins_are_named(sqlite_store: str) -> None:
    preflight = {
        "Origin": "http://app.test",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with serving(sqlite_store) as served:
        plain = httpx.options(
            f"{served.url}/aggregates/Counter/c/commands/increment", headers=preflight
        )
        assert "access-control-allow-origin" not in plain.headers
        got = httpx.get(f"{served.url}/healthz", headers={"Origin": "http://app.test"})
        assert "access-control-allow-origin" not in got.headers
    with serving(sqlite_store, "--cors-origin", "http://app.test") as served:
        allowed = httpx.options(
            f"{served.url}/aggregates/Counter/c/commands/increment", headers=preflight
        )
        assert allowed.headers["access-control-allow-origin"] == "http://app.test"
        other = httpx.options(
            f"{served.url}/aggregates/Counter/c/commands/increment",
            headers={**preflight, "Origin": "http://evil.test"},
        )
        assert other.headers.get("access-control-allow-origin") != "http://evil.test"


def test_it_binds_the_loopback_address_by_default(guarded: Served) -> None:
    port = int(guarded.url.rsplit(":", 1)[1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # LISTEN
                listening.add(address)
    assert listening == {"0100007F"}  # 127.0.0.1 only
