"""The CLI end to end, through the real `thalo` entry point in subprocesses, on both stores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import bumped_copy, fresh_database

ROOT = Path(__file__).resolve().parents[2]
THALO = str(Path(sys.executable).with_name("thalo"))

pytestmark = pytest.mark.wasm


def thalo(
    *args: str,
    store: str,
    cwd: Path,
    check_code: int | None = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "THALO_STORE": store, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [THALO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check_code is not None:
        assert proc.returncode == check_code, (
            f"thalo {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@contextmanager
def background(*args: str, store: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """A long-running `thalo` command (run, category --follow), terminated afterwards."""
    proc = subprocess.Popen(
        [THALO, *args],
        cwd=cwd,
        env={**os.environ, "THALO_STORE": store},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:  # not already waited for by the test
            proc.terminate()
            proc.communicate(timeout=30)


def increment_async(entity: str, amount: int, *, store: str, cwd: Path) -> list[dict[str, Any]]:
    """`thalo execute Counter ENTITY increment --async --json`: the recorded events."""
    payload = json.dumps({"amount": amount})
    done = thalo(
        *("execute", "Counter", entity, "increment", payload, "--async", "--json"),
        *("--timeout", "60"),
        store=store,
        cwd=cwd,
    )
    events: list[dict[str, Any]] = json.loads(done.stdout)
    return events


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def cli_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    # A database of its own: these tests publish versions other tests must not see.
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the examples, so builds write their dist/ outside the repository."""
    target = tmp_path / "work"
    shutil.copytree(ROOT / "examples", target, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    return target


def test_publish_execute_inspect(cli_store: str, workdir: Path) -> None:
    entity = f"acc{uuid.uuid4().hex[:8]}"
    published = json.loads(
        thalo("publish", "bank_account", "--json", store=cli_store, cwd=workdir).stdout
    )
    assert (published["name"], published["version"]) == ("BankAccount", "0.1.0")
    again = thalo("publish", "bank_account", store=cli_store, cwd=workdir)
    assert "BankAccount 0.1.0 is already published from this source" in again.stdout

    modules = json.loads(thalo("modules", "--json", store=cli_store, cwd=workdir).stdout)
    assert ("BankAccount", "0.1.0") in {(m["name"], m["version"]) for m in modules}

    opened = thalo(
        "execute",
        "BankAccount",
        entity,
        "open_account",
        '{"initial_balance": 10}',
        "--json",
        store=cli_store,
        cwd=workdir,
    )
    assert [e["type"] for e in json.loads(opened.stdout)] == ["OpenedAccount"]
    table = thalo(
        "execute",
        "BankAccount",
        entity,
        "deposit_funds",
        '{"amount": 5}',
        store=cli_store,
        cwd=workdir,
    )
    assert "DepositedFunds" in table.stdout and '"balance":15' in table.stdout

    stream = json.loads(
        thalo("stream", f"bankAccount-{entity}", "--json", store=cli_store, cwd=workdir).stdout
    )
    assert [(m["position"], m["type"]) for m in stream] == [
        (0, "OpenedAccount"),
        (1, "DepositedFunds"),
    ]
    state = json.loads(
        thalo("state", "BankAccount", entity, "--json", store=cli_store, cwd=workdir).stdout
    )
    assert state["state"]["balance"] == 15 and state["version"] == 1
    past = json.loads(
        thalo(
            "state", "BankAccount", entity, "--at", "0", "--json", store=cli_store, cwd=workdir
        ).stdout
    )
    assert past["state"]["balance"] == 10
    category = json.loads(
        thalo("category", "bankAccount", "--json", store=cli_store, cwd=workdir).stdout
    )
    assert {m["stream_name"] for m in category} >= {f"bankAccount-{entity}"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("execute", "BankAccount", "{id}", "withdraw_funds", '{"amount": 1}'), 1, "not open"),
        (
            ("execute", "BankAccount", "{id}", "open_account", '{"initial_balance": "x"}'),
            2,
            "$.initial_balance",
        ),
        (("execute", "BankAccount", "{id}", "launch", "{}"), 2, "no command 'launch'"),
        (("execute", "Nope", "{id}", "open_account", "{}"), 2, "unknown aggregate 'Nope'"),
        (("execute", "BankAccount", "{id}", "open_account", "[1"), 2, "not valid JSON"),
    ],
)
def test_exit_codes(
    cli_store: str, workdir: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    entity = f"acc{uuid.uuid4().hex[:8]}"
    thalo("publish", "bank_account", store=cli_store, cwd=workdir)
    proc = thalo(
        *(a.replace("{id}", entity) for a in args), store=cli_store, cwd=workdir, check_code=code
    )
    assert message in proc.stderr
    assert (
        json.loads(
            thalo("stream", f"bankAccount-{entity}", "--json", store=cli_store, cwd=workdir).stdout
        )
        == []
    )


def test_publish_decides_before_building(cli_store: str, workdir: Path, tmp_path: Path) -> None:
    """With an empty build cache, a no-op or a refusal builds nothing: it is decided first."""
    published = json.loads(
        thalo("publish", "counter", "--json", store=cli_store, cwd=workdir).stdout
    )
    shutil.rmtree(workdir / "counter" / "dist")
    cache = tmp_path / "cleared-cache"
    fresh = {"THALO_CACHE_DIR": str(cache)}

    again = thalo("publish", "counter", "--json", store=cli_store, cwd=workdir, env=fresh)
    assert json.loads(again.stdout) == published
    said = thalo("publish", "counter", store=cli_store, cwd=workdir, env=fresh).stdout
    assert "Counter 0.1.0 is already published from this source" in said
    assert not cache.exists() and not (workdir / "counter" / "dist").exists(), "it built"

    module = workdir / "counter" / "counter.py"
    module.write_text(module.read_text() + "\n# a change of source under the same version\n")
    refused = thalo("publish", "counter", store=cli_store, cwd=workdir, env=fresh, check_code=2)
    assert "VersionAlreadyPublished" in refused.stderr or "already published" in refused.stderr
    assert "built from other source" in refused.stderr
    assert not cache.exists() and not (workdir / "counter" / "dist").exists(), "it built"
    listed = json.loads(thalo("modules", "Counter", "--json", store=cli_store, cwd=workdir).stdout)
    assert [(m["version"], m["sha256"]) for m in listed] == [("0.1.0", published["sha256"])]


def test_modules_retire_and_gc(cli_store: str, workdir: Path) -> None:
    thalo("publish", "counter", store=cli_store, cwd=workdir)
    entity = f"c{uuid.uuid4().hex[:8]}"
    thalo("execute", "Counter", entity, "increment", '{"amount": 1}', store=cli_store, cwd=workdir)
    said = thalo("modules", "retire", "Counter", "0.1.0", store=cli_store, cwd=workdir).stdout
    assert "retired Counter 0.1.0" in said
    listed = json.loads(thalo("modules", "Counter", "--json", store=cli_store, cwd=workdir).stdout)
    assert listed[0]["retired_at"] is not None
    table = thalo("modules", store=cli_store, cwd=workdir).stdout
    assert "0.1.0 (retired)" in table
    refused = thalo(
        *("execute", "Counter", entity, "increment", '{"amount": 1}', "--json"),
        store=cli_store,
        cwd=workdir,
        check_code=2,
    )
    assert json.loads(refused.stdout)["error"]["code"] == "ModuleRetired"
    # History written by the retired version still replays with it.
    state = json.loads(
        thalo("state", "Counter", entity, "--json", store=cli_store, cwd=workdir).stdout
    )
    assert state["state"]["count"] == 1
    missing = thalo(
        "modules", "retire", "Counter", "9.9.9", store=cli_store, cwd=workdir, check_code=2
    )
    assert "Counter 9.9.9 is not published" in missing.stderr

    figures = json.loads(thalo("modules", "gc", "--json", store=cli_store, cwd=workdir).stdout)
    assert (figures["removed"], figures["freed_bytes"], figures["blobs"]) == (0, 0, 1)
    assert figures["stored_bytes"] * 3 < figures["raw_bytes"]
    said = thalo("modules", "gc", store=cli_store, cwd=workdir).stdout
    assert "removed 0 unreferenced component(s)" in said


def test_unreachable_store_exits_5(workdir: Path) -> None:
    proc = thalo(
        "modules", store="postgresql://postgres@127.0.0.1:1/nowhere", cwd=workdir, check_code=5
    )
    assert "cannot connect" in proc.stderr


def test_execute_async_through_a_running_consumer(cli_store: str, workdir: Path) -> None:
    entity = f"c{uuid.uuid4().hex[:8]}"
    thalo("publish", "counter", store=cli_store, cwd=workdir)
    name = f"cli{uuid.uuid4().hex[:6]}"
    with background("run", "Counter", "--name", name, store=cli_store, cwd=workdir) as consumer:
        events = increment_async(entity, 4, store=cli_store, cwd=workdir)
        assert [(e["type"], e["data"]["count"]) for e in events] == [("Incremented", 4)]
        refused = thalo(
            *("execute", "Counter", entity, "increment", '{"amount": 0}', "--async"),
            store=cli_store,
            cwd=workdir,
            check_code=1,
        )
        assert "positive" in refused.stderr
        consumer.terminate()
        out, err = consumer.communicate(timeout=30)
    assert consumer.returncode == 0, err
    assert "1 commands succeeded, 1 failed" in out.replace("\n", " ")


def test_a_new_version_serves_without_restart(cli_store: str, workdir: Path) -> None:
    """A running `thalo run` picks up a newly published version within seconds."""
    entity = f"c{uuid.uuid4().hex[:8]}"
    thalo("publish", "counter", store=cli_store, cwd=workdir)
    name = f"cli{uuid.uuid4().hex[:6]}"
    with background("run", "Counter", "--name", name, store=cli_store, cwd=workdir):
        first = increment_async(entity, 1, store=cli_store, cwd=workdir)
        assert first[0]["metadata"]["thaloModuleVersion"] == "0.1.0"
        bumped_copy(workdir / "counter", workdir / "counter2", "0.2.0")
        thalo("publish", "counter2", store=cli_store, cwd=workdir)
        deadline = time.monotonic() + 30
        version = "0.1.0"
        while version != "0.2.0" and time.monotonic() < deadline:
            event = increment_async(entity, 1, store=cli_store, cwd=workdir)[0]
            version = event["metadata"]["thaloModuleVersion"]
        assert version == "0.2.0"
        assert event["data"]["count"] == event["position"] + 1  # state carried over


def test_category_follow_prints_new_messages(cli_store: str, workdir: Path) -> None:
    entity = f"c{uuid.uuid4().hex[:8]}"
    thalo("publish", "counter", store=cli_store, cwd=workdir)
    follow = ("category", "counter", "--follow", "--json", "--poll", "0.05")
    with background(*follow, store=cli_store, cwd=workdir) as follower:
        thalo(
            "execute", "Counter", entity, "increment", '{"amount": 7}', store=cli_store, cwd=workdir
        )
        assert follower.stdout is not None
        deadline = time.monotonic() + 30
        seen: dict[str, object] = {}
        while time.monotonic() < deadline:
            message = json.loads(follower.stdout.readline())
            if message["stream_name"] == f"counter-{entity}":
                seen = message
                break
        assert seen.get("type") == "Incremented"
