"""Issue 11, items 15-25: the CLI facing untrusted text, scripts, big payloads and new users.

Every test runs the real `thalo` entry point in a subprocess; tests that touch a
store run on both backends (a copy of the session's published SQLite store, and
the session's published Message DB database with ids of their own).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import EXAMPLES

from thalo.core import NewMessage
from thalo.store import open_store

THALO = str(Path(sys.executable).with_name("thalo"))

pytestmark = pytest.mark.wasm


def thalo(
    *args: str,
    cwd: Path,
    store: str | None = None,
    code: int | None = 0,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `thalo ARGS` (with THALO_STORE=store when given); check its exit code."""
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    environment.pop("THALO_STORE", None)
    if store is not None:
        environment["THALO_STORE"] = store
    proc = subprocess.run(
        [THALO, *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if code is not None:
        assert proc.returncode == code, (
            f"thalo {' '.join(a[:80] for a in args)} exited {proc.returncode}\n"
            f"{proc.stdout[:3000]}\n{proc.stderr[:3000]}"
        )
    return proc


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store with every test module published (Counter, Todos, Chaos, …)."""
    if request.param == "sqlite":
        copy = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("published_sqlite"), copy)
        return f"sqlite:///{copy}"
    url: str = request.getfixturevalue("published_postgres")
    return url


def unique(prefix: str = "e") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# --- 15: untrusted text in the terminal ---------------------------------------------


def test_markup_in_data_and_ids_prints_verbatim(store: str, tmp_path: Path) -> None:
    """`[/oops]` in data used to crash the table (exit 1 after storing); ids printed changed."""
    entity = f"[red]{unique()}[/red]:b:"
    payload = json.dumps({"id": "1", "description": "[/oops] x [bold]y"})
    done = thalo("execute", "Todos", entity, "add_todo", payload, store=store, cwd=tmp_path)
    assert "[/oops] x [bold]y" in done.stdout
    assert f"Todos {entity}: add_todo" in done.stdout  # no colour, no emoji for ":b:"
    shown = thalo("stream", f"todos-{entity}", store=store, cwd=tmp_path)
    assert "[/oops] x [bold]y" in shown.stdout and f"todos-{entity}" in shown.stdout
    assert "\x1b" not in done.stdout + shown.stdout


def test_control_characters_never_reach_the_terminal(store: str, tmp_path: Path) -> None:
    """ANSI escapes in a rejection reason (stderr) and in stored text (stdout) show escaped."""
    entity = unique()
    reason = "\x1b[31mred\x1b]0;pwned\x07 \u202eevil"
    refused = thalo(
        "execute", "Chaos", entity, "refuse", json.dumps({"reason": reason}),
        store=store, cwd=tmp_path, code=1,
    )  # fmt: skip
    assert "\x1b" not in refused.stderr and "\x07" not in refused.stderr
    assert "\\x1b[31mred\\x1b]0;pwned\\x07 \\u202eevil" in refused.stderr
    payload = json.dumps({"id": "\x1b[2J", "description": "\x1b[31mred"})
    thalo("execute", "Todos", entity, "add_todo", payload, store=store, cwd=tmp_path)
    shown = thalo("stream", f"todos-{entity}", store=store, cwd=tmp_path)
    # JSON already escapes controls inside data; ids, types and names are text of their own.
    assert "\x1b" not in shown.stdout


def test_a_huge_event_prints_fast_and_cut(store: str, tmp_path: Path) -> None:
    """A 3 MB event prints as a table in seconds, cut with a marker; --json keeps it whole."""
    stream_name = f"todos-{unique()}"

    async def write() -> None:
        async with open_store(store) as opened:
            data = {"id": "1", "description": "x" * 3_000_000}
            await opened.write_message(stream_name, NewMessage("AddedTodo", data))

    asyncio.run(write())
    started = time.monotonic()
    shown = thalo("stream", stream_name, store=store, cwd=tmp_path)
    assert time.monotonic() - started < 20
    assert "more characters)" in shown.stdout
    assert len(shown.stdout) < 50_000
    whole = json.loads(thalo("stream", stream_name, "--json", store=store, cwd=tmp_path).stdout)
    assert len(whole[0]["data"]["description"]) == 3_000_000


def test_error_texts_are_bounded(store: str, tmp_path: Path) -> None:
    """A 100 kB unknown aggregate name gives an error of at most ~10 kB, saying what was cut."""
    name = "N" * 100_000
    failed = thalo("execute", name, "x", "go", store=store, cwd=tmp_path, code=2)
    assert "UnknownAggregate" in failed.stderr
    assert "more characters)" in failed.stderr
    assert len(failed.stderr) < 12_000
    as_json = thalo("execute", name, "x", "go", "--json", store=store, cwd=tmp_path, code=2)
    assert len(json.loads(as_json.stdout)["error"]["message"]) < 12_000


def test_a_failure_while_printing_keeps_the_exit_code(store: str, tmp_path: Path) -> None:
    """stdout closed under a successful command: exit 0, and the event is stored."""
    entity = unique()
    read, write = os.pipe()
    os.close(read)  # every write to stdout now fails (EPIPE)
    try:
        proc = subprocess.run(
            [THALO, "execute", "Counter", entity, "increment", '{"amount": 2}'],
            cwd=tmp_path,
            env={**os.environ, "THALO_STORE": store},
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    stored = json.loads(
        thalo("stream", f"counter-{entity}", "--json", store=store, cwd=tmp_path).stdout
    )
    assert [m["type"] for m in stored] == ["Incremented"]


# --- 16: --json errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (("execute", "Counter", "{id}", "increment", '{"amount": "3"}'), "PayloadInvalid", 2),
        (("execute", "Counter", "{id}", "increment", '{"amount": 0}'), "CommandRejected", 1),
        (("execute", "Nope", "{id}", "go"), "UnknownAggregate", 2),
        (("execute", "Counter"), "UsageError", 2),
        (("execute", "Counter", "{id}", "increment", "--bogus"), "UsageError", 2),
        (("state", "Counter", "{id}", "--at", "x"), "UsageError", 2),
    ],
)
def test_json_errors_are_one_json_document_on_stdout(
    store: str, tmp_path: Path, args: tuple[str, ...], code: str, exit_code: int
) -> None:
    entity = unique()
    argv = [a.replace("{id}", entity) for a in args]
    proc = thalo(*argv, "--json", store=store, cwd=tmp_path, code=exit_code)
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], error["exit_code"]) == (code, exit_code)
    assert error["message"]


def test_json_error_for_an_unreachable_store_exits_5(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    proc = thalo("modules", "--json", store=url, cwd=tmp_path, code=5)
    assert json.loads(proc.stdout)["error"]["code"] == "StoreUnavailable"


# --- 17: global options after the subcommand ---------------------------------------------


def test_store_option_after_the_subcommand(store: str, tmp_path: Path) -> None:
    entity = unique()
    thalo(
        "execute", "--store", store, "Counter", entity, "increment", '{"amount": 3}',
        cwd=tmp_path,
    )  # fmt: skip
    read = thalo("stream", f"counter-{entity}", "--json", "--store", store, cwd=tmp_path)
    assert [m["data"]["amount"] for m in json.loads(read.stdout)] == [3]
    state = thalo("state", "Counter", entity, "--store", store, "--json", cwd=tmp_path)
    assert json.loads(state.stdout)["state"]["count"] == 3
    assert not (tmp_path / ".thalo").exists()  # the default store was never opened
    # After the subcommand wins over before it, as the later option should.
    both = thalo(
        "--store", "sqlite:///elsewhere.db", "modules", "--store", store, "--json", cwd=tmp_path
    )
    assert "Counter" in {m["name"] for m in json.loads(both.stdout)}
    assert not (tmp_path / "elsewhere.db").exists()


def test_serve_keeps_its_own_store_option(tmp_path: Path) -> None:
    shown = thalo("serve", "--help", cwd=tmp_path).stdout
    assert [line.split()[0] for line in shown.splitlines() if "--store URL" in line] == ["--store"]


# --- 18: read-only commands never create a store -----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("stream", "counter-c1"),
        ("category", "counter"),
        ("modules",),
        ("state", "Counter", "c1"),
    ],
)
def test_read_only_commands_never_create_a_store(tmp_path: Path, args: tuple[str, ...]) -> None:
    """The default store: exit 2 (StoreNotInitialized) naming the path; nothing created."""
    failed = thalo(*args, cwd=tmp_path, code=2)
    assert "StoreNotInitialized" in failed.stderr
    assert str(Path(".thalo", "thalo.db")) in failed.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_directory_is_not_created(tmp_path: Path) -> None:
    url = "sqlite:///nonexistent/dir/x.db"
    failed = thalo("--store", url, "modules", "--json", cwd=tmp_path, code=2)
    error = json.loads(failed.stdout)["error"]
    assert error["code"] == "StoreNotInitialized" and "nonexistent/dir/x.db" in error["message"]
    assert not (tmp_path / "nonexistent").exists()


# --- 19: large payloads from stdin or a file ------------------------------------------------


def test_payload_and_metadata_from_stdin_and_files(store: str, tmp_path: Path) -> None:
    """5 MB does not fit in an argument; `-` reads stdin, `@FILE` a file (also --metadata)."""
    entity = unique()
    big = "y" * 5_000_000
    from_stdin = thalo(
        "execute", "Todos", entity, "add_todo", "-", "--json",
        stdin=json.dumps({"id": "1", "description": big}), store=store, cwd=tmp_path,
    )  # fmt: skip
    assert json.loads(from_stdin.stdout)[0]["data"]["description"] == big
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"id": "2", "description": "from a file"}))
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"origin": "file"}))
    from_file = thalo(
        "execute", "Todos", entity, "add_todo", f"@{payload}", "--metadata", f"@{metadata}",
        "--json", store=store, cwd=tmp_path,
    )  # fmt: skip
    event = json.loads(from_file.stdout)[0]
    assert event["data"]["description"] == "from a file"
    assert event["metadata"]["origin"] == "file"
    missing = thalo(
        "execute", "Todos", entity, "add_todo", "@nope.json", store=store, cwd=tmp_path, code=2
    )
    assert "nope.json" in missing.stderr


# --- 22: category --follow -------------------------------------------------------------------


def test_category_follow_prints_one_line_per_message_with_its_stream(
    store: str, tmp_path: Path
) -> None:
    first, second = unique("f"), unique("s")
    follow = [THALO, "category", "counter", "--follow", "--poll", "0.05"]
    follower = subprocess.Popen(
        follow,
        cwd=tmp_path,
        env={**os.environ, "THALO_STORE": store, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for entity in (first, second):
            thalo(
                "execute", "Counter", entity, "increment", '{"amount": 1}',
                store=store, cwd=tmp_path,
            )  # fmt: skip
        assert follower.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            any(f"counter-{e}@0" in line for line in lines) for e in (first, second)
        ):
            lines.append(follower.stdout.readline())
    finally:
        follower.terminate()
        follower.communicate(timeout=30)
    ours = [line for line in lines if first in line or second in line]
    assert len(ours) == 2 and all("Incremented" in line for line in ours)
    assert sum("stream@position" in line for line in lines) == 1  # one header, one format
    assert not any("━" in line for line in lines)  # no table per message


# --- 23: thalo new refuses names Python cannot use ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("class", "is a Python keyword"),
        ("none", "is a Python keyword"),  # the class would be `None`
        ("json", "shadow the standard library module 'json'"),
        ("types", "shadow the standard library module 'types'"),
    ],
)
def test_new_refuses_keywords_and_standard_library_names(
    tmp_path: Path, name: str, reason: str
) -> None:
    refused = thalo("new", name, cwd=tmp_path, code=2)
    assert reason in refused.stderr
    assert list(tmp_path.iterdir()) == []


# --- 24: the test harness validates like the runtime ------------------------------------------


def test_the_harness_refuses_what_the_runtime_refuses(store: str, tmp_path: Path) -> None:
    """Same payload, same error text: `thalo execute` (the runtime) and AggregateTest.when."""
    runtime = thalo(
        "execute", "Counter", unique(), "increment", '{"amount": "3"}', "--json",
        store=store, cwd=tmp_path, code=2,
    )  # fmt: skip
    script = (
        "import json, sys\n"
        "from counter import Counter\n"
        "from thalo.errors import PayloadInvalid\n"
        "from thalo.sdk.testing import AggregateTest\n"
        "try:\n"
        "    AggregateTest(Counter).when('increment', {'amount': '3'})\n"
        "except PayloadInvalid as exc:\n"
        "    print(json.dumps({'code': exc.code, 'message': exc.message}))\n"
    )
    harness = subprocess.run(
        [sys.executable, "-c", script],
        cwd=EXAMPLES / "counter",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    error = json.loads(runtime.stdout)["error"]
    assert json.loads(harness.stdout) == {"code": error["code"], "message": error["message"]}


# --- 25: say when a module is being compiled ----------------------------------------------------


def test_a_compile_is_announced_on_stderr_once(store: str, tmp_path: Path) -> None:
    cache = {"THALO_CACHE_DIR": str(tmp_path / "fresh-cache")}
    entity = unique()
    args = ("execute", "Counter", entity, "increment", '{"amount": 1}', "--json")
    first = thalo(*args, store=store, cwd=tmp_path, env=cache)
    assert "compiling Counter 0.1.0 (once; cached afterwards)" in first.stderr
    assert json.loads(first.stdout)[0]["type"] == "Incremented"  # stdout stays pure JSON
    second = thalo(*args, store=store, cwd=tmp_path, env=cache)
    assert "compiling" not in second.stderr
    state = thalo("state", "Counter", entity, "--json", store=store, cwd=tmp_path, env=cache)
    assert "compiling" not in state.stderr
