"""The CLI with ``--url``: the real ``thalo`` entry point talking to a real ``thalo serve``.

The same commands run locally (``--store``) on the server's own store file
print the same thing, and nothing creates a local store in the working
directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, bumped_copy, unique
from serving import THALO, Served, free_port, serving

pytestmark = pytest.mark.wasm


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THALO_")}
    return {**env, "COLUMNS": "200", **(extra or {})}


def thalo(
    *args: str, cwd: Path, code: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [THALO, *args], cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == code, (
        f"thalo {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


@pytest.fixture
def cwd(tmp_path: Path) -> Iterator[Path]:
    """An empty working directory, checked to stay without a local store."""
    path = tmp_path / "cwd"
    path.mkdir()
    yield path
    assert not (path / ".thalo").exists(), "a command opened a local store"


def test_execute_state_stream_category_modules_through_the_server(
    server: Served, cwd: Path
) -> None:
    url = ("--url", server.url)
    entity = unique("c")
    first = json.loads(
        thalo(
            "execute", "Counter", entity, "increment", '{"amount": 2}', "--json", *url, cwd=cwd
        ).stdout
    )
    assert [(e["type"], e["data"]["count"], e["position"]) for e in first] == [
        ("Incremented", 2, 0)
    ]
    table = thalo("execute", "Counter", entity, "increment", '{"amount": 3}', *url, cwd=cwd)
    assert f"Counter {entity}: increment" in table.stdout and '"count":5' in table.stdout

    state = json.loads(thalo("state", "Counter", entity, "--json", *url, cwd=cwd).stdout)
    assert (state["version"], state["state"]["count"]) == (1, 5)
    past = json.loads(
        thalo("state", "Counter", entity, "--at", "0", "--json", *url, cwd=cwd).stdout
    )
    assert past["state"]["count"] == 2
    stream = json.loads(thalo("stream", f"counter-{entity}", "--json", *url, cwd=cwd).stdout)
    assert [m["position"] for m in stream] == [0, 1]
    start = str(first[0]["global_position"])
    category = json.loads(
        thalo("category", "counter", "--from", start, "--json", *url, cwd=cwd).stdout
    )
    assert [m["position"] for m in category if m["stream_name"] == f"counter-{entity}"] == [0, 1]
    modules = json.loads(thalo("modules", "--json", *url, cwd=cwd).stdout)
    assert ("Counter", "0.1.0") in {(m["name"], m["version"]) for m in modules}

    # The same commands on the server's store file, locally: the same output.
    local = ("--store", server.store_url)
    for command in (
        ("stream", f"counter-{entity}"),
        ("stream", f"counter-{entity}", "--json"),
        ("stream", f"counter-{entity}", "--from", "1", "--limit", "1"),
        ("state", "Counter", entity, "--json"),
        ("state", "Counter", entity, "--at", "0"),
        ("category", "counter", "--from", start, "--limit", "2", "--json"),
        ("category", "counter", "--from", start, "--limit", "2"),
        ("modules", "--json"),
        ("modules", "Counter"),
        ("modules", "Nope"),
    ):
        remote = thalo(*command, *url, cwd=cwd).stdout
        # strip: the local `state` leaves a blank line where its replay progress bar was.
        assert remote.strip() == thalo(*local, *command, cwd=cwd.parent).stdout.strip(), command


def test_thalo_url_and_thalo_token_come_from_the_environment(server: Served, cwd: Path) -> None:
    entity = unique("c")
    env = {"THALO_URL": server.url, "THALO_TOKEN": server.admin_token}
    done = thalo(
        "execute", "Counter", entity, "increment", '{"amount": 1}', "--json", cwd=cwd, env=env
    )
    assert json.loads(done.stdout)[0]["stream_name"] == f"counter-{entity}"
    assert json.loads(thalo("stream", f"counter-{entity}", "--json", cwd=cwd, env=env).stdout)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("execute", "Counter", "{id}", "increment", '{"amount": 0}'), 1, "positive"),
        (("execute", "Counter", "{id}", "increment", '{"amount": "x"}'), 2, "$.amount"),
        (("execute", "Counter", "{id}", "launch"), 2, "no command 'launch'"),
        (("execute", "Nope", "{id}", "increment"), 2, "unknown aggregate 'Nope'"),
        (("execute", "Counter", "{id}", "increment", "[1"), 2, "not valid JSON"),
        (("stream", "counter-{id}", "--limit", "0"), 2, ""),
    ],
)
def test_exit_codes_over_http(
    server: Served, cwd: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    entity = unique("c")
    proc = thalo(
        *(a.replace("{id}", entity) for a in args), "--url", server.url, cwd=cwd, code=code
    )
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    stream = thalo("stream", f"counter-{entity}", "--json", "--url", server.url, cwd=cwd)
    assert json.loads(stream.stdout) == []


def test_an_unreachable_server_exits_5(cwd: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for command in (("modules",), ("execute", "Counter", "c-1", "increment", '{"amount": 1}')):
        proc = thalo(*command, "--url", url, cwd=cwd, code=5)
        assert "ServerUnavailable" in proc.stderr and url in proc.stderr


def test_execute_async_through_the_server_runner(server: Served, cwd: Path) -> None:
    entity = unique("c")
    args = ("execute", "Counter", entity, "increment", '{"amount": 4}', "--async", "--json")
    events = json.loads(thalo(*args, "--timeout", "60", "--url", server.url, cwd=cwd).stdout)
    assert [(e["type"], e["data"]["count"]) for e in events] == [("Incremented", 4)]
    refused = ("execute", "Counter", entity, "increment", '{"amount": 0}', "--async")
    proc = thalo(*refused, "--url", server.url, cwd=cwd, code=1)
    assert "positive" in proc.stderr


def test_execute_async_times_out_without_a_runner(private_store: str, cwd: Path) -> None:
    with serving(private_store, "--no-runner", capture=True) as server:
        args = ("execute", "Counter", unique("c"), "increment", '{"amount": 1}', "--async")
        proc = thalo(*args, "--timeout", "0.5", "--url", server.url, cwd=cwd, code=5)
    assert "CommandTimeout" in proc.stderr


def test_publish_builds_locally_and_uploads_with_the_admin_token(
    private_store: str, tmp_path: Path, cwd: Path
) -> None:
    project = bumped_copy(EXAMPLES / "counter", tmp_path / "counter", "0.2.0")
    with serving(private_store, capture=True) as server:
        url = ("--url", server.url)
        refused = thalo("publish", str(project), *url, cwd=cwd, code=2)
        assert "Unauthorized" in refused.stderr or "Forbidden" in refused.stderr
        wrong = thalo("publish", str(project), *url, "--token", "not-the-admin", cwd=cwd, code=2)
        assert server.admin_token not in wrong.stderr + wrong.stdout

        done = thalo("publish", str(project), *url, "--token", server.admin_token, cwd=cwd)
        assert "published Counter 0.2.0" in done.stdout and "increment, decrement" in done.stdout
        listed = json.loads(thalo("modules", "Counter", "--json", *url, cwd=cwd).stdout)
        assert [m["version"] for m in listed] == ["0.1.0", "0.2.0"]
        again = thalo(
            "publish", str(project), "--json", *url, "--token", server.admin_token, cwd=cwd
        )
        record: dict[str, Any] = json.loads(again.stdout)
        assert (record["name"], record["version"]) == ("Counter", "0.2.0")
        # Other source under 0.2.0: refused from the server's records, before any build.
        (project / "counter.py").write_text((project / "counter.py").read_text() + "\n# edit\n")
        cache = tmp_path / "cleared-cache"
        changed = thalo(
            *("publish", str(project), *url, "--token", server.admin_token),
            cwd=cwd,
            code=2,
            env={"THALO_CACHE_DIR": str(cache)},
        )
        assert "0.2.0 is already published built from other source" in changed.stderr
        assert not cache.exists(), "the refused publish built the project"

        entity = unique("c")
        event = json.loads(
            thalo(
                "execute", "Counter", entity, "increment", '{"amount": 1}', "--json", *url, cwd=cwd
            ).stdout
        )[0]
        assert event["metadata"]["thaloModuleVersion"] == "0.2.0"


def test_a_breaking_publish_through_the_server_is_refused_before_the_build(
    private_store: str, tmp_path: Path, cwd: Path
) -> None:
    """The server runs the compatibility check on the ESDL alone; nothing is built."""
    project = bumped_copy(EXAMPLES / "counter", tmp_path / "counter", "0.2.0")
    esdl = project / "counter.esdl"
    esdl.write_text(
        esdl.read_text().replace(
            "event Incremented {\n  amount: Int", "event Incremented {\n  amount: String", 1
        )
    )
    cache = tmp_path / "cache"
    with serving(private_store, capture=True) as server:
        refused = thalo(
            *("publish", str(project), "--url", server.url, "--token", server.admin_token),
            cwd=cwd,
            code=2,
            env={"THALO_CACHE_DIR": str(cache)},
        )
        assert "IncompatibleSchema" in refused.stderr
        assert "! Incremented.amount: retyped (Int -> String)" in refused.stderr
        assert not cache.exists(), "the refused publish built the project"
        listed = json.loads(
            thalo("modules", "Counter", "--json", "--url", server.url, cwd=cwd).stdout
        )
        assert [m["version"] for m in listed] == ["0.1.0"]


def test_modules_retire_and_gc_through_the_server(private_store: str, cwd: Path) -> None:
    with serving(private_store, capture=True) as server:
        url = ("--url", server.url)
        admin = ("--token", server.admin_token)
        entity = unique("c")
        thalo("execute", "Counter", entity, "increment", '{"amount": 1}', *url, cwd=cwd)
        for command in (("modules", "retire", "Counter", "0.1.0"), ("modules", "gc")):
            refused = thalo(*command, *url, cwd=cwd, code=2)
            assert "Unauthorized" in refused.stderr
            wrong = thalo(*command, *url, "--token", "not-the-admin", cwd=cwd, code=2)
            assert "Unauthorized" in wrong.stderr
        listed = json.loads(thalo("modules", "Counter", "--json", *url, cwd=cwd).stdout)
        assert listed[0]["retired_at"] is None, "nothing was retired"

        record = json.loads(
            thalo("modules", "retire", "Counter", "0.1.0", "--json", *url, *admin, cwd=cwd).stdout
        )
        assert (record["version"], bool(record["retired_at"])) == ("0.1.0", True)
        gone = thalo(
            *("execute", "Counter", entity, "increment", '{"amount": 1}', "--json", *url),
            cwd=cwd,
            code=2,
        )
        assert json.loads(gone.stdout)["error"]["code"] == "ModuleRetired"
        missing = thalo("modules", "retire", "Counter", "9.9.9", *url, *admin, cwd=cwd, code=2)
        assert "Counter 9.9.9 is not published" in missing.stderr
        env = {"THALO_URL": server.url, "THALO_TOKEN": server.admin_token}
        figures = json.loads(thalo("modules", "gc", "--json", cwd=cwd, env=env).stdout)
        assert (figures["removed"], figures["freed_bytes"]) == (0, 0) and figures["blobs"] >= 6

        # The same commands locally on the server's store print the same (retiring
        # is idempotent; nothing is left to collect).
        local = ("--store", server.store_url)
        for command in (
            ("modules", "retire", "Counter", "0.1.0"),
            ("modules", "retire", "Counter", "0.1.0", "--json"),
            ("modules", "gc"),
            ("modules", "gc", "--json"),
        ):
            remote = thalo(*command, *url, *admin, cwd=cwd).stdout
            assert remote == thalo(*local, *command, cwd=cwd.parent).stdout, command


@contextmanager
def background(*args: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [THALO, *args],
        cwd=cwd,
        env=_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=30)


def test_category_follow_rides_the_event_stream(server: Served, cwd: Path) -> None:
    entity = unique("c")
    start = thalo(
        "execute",
        "Counter",
        entity,
        "increment",
        '{"amount": 1}',
        "--json",
        "--url",
        server.url,
        cwd=cwd,
    ).stdout
    first = json.loads(start)[0]["global_position"]
    follow = ("category", "counter", "--follow", "--json", "--from", str(first))
    with background(*follow, "--url", server.url, cwd=cwd) as follower:
        assert follower.stdout is not None
        seen = [json.loads(follower.stdout.readline())]
        thalo(
            "execute", "Counter", entity, "increment", '{"amount": 6}', "--url", server.url, cwd=cwd
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(seen) < 2:
            message = json.loads(follower.stdout.readline())
            if message["stream_name"] == f"counter-{entity}":
                seen.append(message)
    assert [(m["position"], m["data"]["count"]) for m in seen] == [(0, 1), (1, 7)]


def test_without_a_url_the_cli_stays_local(tmp_path: Path) -> None:
    """No --url, no THALO_URL: the default store under ./.thalo/ is opened, as before."""
    workdir = tmp_path / "local"
    workdir.mkdir()
    # a read-only command never creates a store: it names the missing local one
    missing = thalo("modules", cwd=workdir, code=2)
    assert ".thalo/thalo.db" in missing.stderr and not (workdir / ".thalo").exists()
    thalo("store", "init", cwd=workdir)
    proc = thalo("modules", cwd=workdir)
    assert "no modules published" in proc.stdout
    assert (workdir / ".thalo" / "thalo.db").exists()
