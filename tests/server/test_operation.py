"""Running `thalo serve` for real: SIGTERM under load, overload, several servers, logs, outages."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from components import publish_all
from helpers import fresh_database, unique
from serving import THALO, Served, post, problem, serving

pytestmark = pytest.mark.wasm


@pytest.fixture
def sqlite_store(published_sqlite: Path, tmp_path: Path) -> str:
    target = tmp_path / "store.db"
    shutil.copyfile(published_sqlite, target)
    return f"sqlite:///{target.as_posix()}"


def stored_command_ids(http: httpx.Client, category: str) -> list[str]:
    ids: list[str] = []
    position = 1
    while True:
        page = http.get(f"/categories/{category}", params={"position": position}).json()
        if not page["messages"]:
            return ids
        ids += [str((m["metadata"] or {}).get("thaloCommandId")) for m in page["messages"]]
        position = page["next_position"]


def test_sigterm_lets_in_flight_commands_finish_and_loses_none(sqlite_store: str) -> None:
    outcomes: dict[str, tuple[str, float]] = {}
    with serving(sqlite_store, capture=True) as served:
        start = threading.Barrier(51)

        def send(n: int) -> None:
            key = f"cmd-{n}"
            with httpx.Client(base_url=served.url, timeout=60) as http:
                start.wait()
                try:
                    # ~0.2 s of guest work each, on two guest threads: most are in flight
                    answer = post(
                        http, "Hostile", f"e{n % 7}", "dawdle", {"rounds": 20}, Idempotency_Key=key
                    )
                    code = answer.json().get("code", "")
                    outcomes[key] = (f"{answer.status_code} {code}", time.monotonic())
                except httpx.TransportError as exc:
                    outcomes[key] = (f"unsent {type(exc).__name__}", time.monotonic())

        with ThreadPoolExecutor(50) as pool:
            futures = [pool.submit(send, n) for n in range(50)]
            start.wait()
            time.sleep(0.5)
            signalled = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            for future in futures:
                future.result()
        code, log = served.stop(timeout=60)
    assert code == 0, log
    kinds = {outcome for outcome, _ in outcomes.values()}
    assert kinds <= {"200 ", "503 ServerUnavailable"} | {
        k for k in kinds if k.startswith("unsent")
    }, kinds
    finished_after_signal = [k for k, (o, t) in outcomes.items() if o == "200 " and t > signalled]
    assert finished_after_signal, f"no command was in flight at SIGTERM: {outcomes}"
    # every command reported done is stored, and nothing stored was reported failed
    with serving(sqlite_store) as again, httpx.Client(base_url=again.url) as http:
        stored = stored_command_ids(http, "hostile")
    succeeded = {k for k, (o, _) in outcomes.items() if o == "200 "}
    assert sorted(stored) == sorted(succeeded)


def test_overload_is_a_429_with_retry_after_and_runs_nothing(sqlite_store: str) -> None:
    with serving(sqlite_store, "--max-inflight", "1", capture=True) as served:
        keys = [f"o-{n}" for n in range(40)]

        def send(key: str) -> httpx.Response:
            with httpx.Client(base_url=served.url, timeout=60) as http:
                # a cold entity each: its rebuild awaits the store, so others pile up
                return post(http, "Counter", key, "increment", {"amount": 1}, Idempotency_Key=key)

        with ThreadPoolExecutor(40) as pool:
            answers = dict(zip(keys, pool.map(send, keys), strict=True))
        overloaded = {k for k, a in answers.items() if a.status_code == 429}
        assert overloaded, "no request was refused with 40 at once and --max-inflight 1"
        for key in overloaded:
            body = problem(answers[key], 429, "Overloaded")
            assert answers[key].headers["retry-after"] == "1" and body["exit_code"] == 5
        assert {a.status_code for a in answers.values()} <= {200, 429}
        with httpx.Client(base_url=served.url) as http:
            stored = set(stored_command_ids(http, "counter"))
        assert stored == set(keys) - overloaded


def test_json_logs_have_one_line_per_request(sqlite_store: str) -> None:
    with serving(sqlite_store, "--log-format", "json", capture=True) as served:
        with httpx.Client(base_url=served.url) as http:
            post(http, "Counter", "j-1", "increment", {"amount": 1})
            post(http, "Counter", "j-1", "increment", {"amount": "x"})
        served.stop()
    entries = [json.loads(line) for line in served.log if line.startswith("{")]
    assert len(entries) == len(served.log), served.log  # every line is JSON
    requests = [e for e in entries if e.get("event") == "request" and e["method"] == "POST"]
    assert [(r["status"], r["code"]) for r in requests] == [(200, ""), (422, "PayloadInvalid")]
    for entry in requests:
        assert entry["route"] == "/aggregates/{aggregate}/{id}/commands/{command}"
        assert (entry["aggregate"], entry["command"]) == ("Counter", "increment")
        assert entry["latency_ms"] > 0 and entry["level"] == "info" and entry["ts"]
        assert "j-1" not in json.dumps(entry)


def test_an_unreachable_store_exits_5(tmp_path: Path) -> None:
    done = subprocess.run(
        [THALO, "serve", "--port", "0", "--store", "postgresql://nobody@127.0.0.1:1/none"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 5, done.stderr
    assert "StoreUnavailable" in done.stderr


@pytest.mark.postgres
def test_a_store_outage_is_503_with_retry_after(postgres_url: str, built: Any) -> None:
    with fresh_database(postgres_url) as url:
        asyncio.run(publish_all(url, {"Counter": built["Counter"]}))
        with (
            serving(url, capture=True) as served,
            httpx.Client(base_url=served.url, timeout=30) as http,
        ):
            assert post(http, "Counter", "out-1", "increment", {"amount": 1}).status_code == 200
            name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
            with psycopg.connect(postgres_url, autocommit=True) as connection:
                connection.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
            try:
                ready = http.get("/readyz")
                problem(ready, 503, ready.json()["code"])
                assert ready.headers["retry-after"]
                started = time.monotonic()
                down = post(http, "Counter", "out-2", "increment", {"amount": 1})
                assert problem(down, 503, down.json()["code"])["exit_code"] == 5
                assert time.monotonic() - started < 10  # fails fast, does not hang
                assert http.get("/healthz").status_code == 200  # the process itself is up
            finally:
                with psycopg.connect(postgres_url, autocommit=True) as connection:
                    connection.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            deadline = time.monotonic() + 30
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the server did not recover from the outage"
                time.sleep(0.2)
            assert post(http, "Counter", "out-3", "increment", {"amount": 1}).status_code == 200


@pytest.mark.postgres
def test_three_servers_racing_on_one_entity_stay_correct(published_postgres: str) -> None:
    entity = unique("race")
    per_server = 40

    def hammer(served: Served, n: int) -> list[tuple[int, str]]:
        results = []
        with httpx.Client(base_url=served.url, timeout=60) as http:
            for i in range(per_server):
                key = f"{n}-{i}-{uuid.uuid4().hex[:6]}"
                answer = post(
                    http, "Counter", entity, "increment", {"amount": 1}, Idempotency_Key=key
                )
                results.append((answer.status_code, key))
        return results

    with (
        serving(published_postgres, "--no-runner", capture=True) as a,
        serving(published_postgres, "--no-runner", capture=True) as b,
        serving(published_postgres, "--no-runner", capture=True) as c,
    ):
        servers = [a, b, c, a, b, c]  # two callers per server
        with ThreadPoolExecutor(len(servers)) as pool:
            results = [r for batch in pool.map(hammer, servers, range(6)) for r in batch]
        with httpx.Client(base_url=a.url) as http:
            events = http.get(f"/streams/counter-{entity}", params={"batch_size": 10_000}).json()
            state = http.get(f"/aggregates/Counter/{entity}").json()
    statuses = {status for status, _ in results}
    assert statuses <= {200, 409}, statuses  # 409: ConcurrencyExhausted, nothing written
    succeeded = [key for status, key in results if status == 200]
    messages = events["messages"]
    assert [m["position"] for m in messages] == list(range(len(messages)))  # contiguous
    assert sorted(m["metadata"]["thaloCommandId"] for m in messages) == sorted(succeeded)
    assert [m["data"]["count"] for m in messages] == list(range(1, len(messages) + 1))
    assert state["state"]["count"] == len(succeeded) and state["version"] == len(messages) - 1
    assert len(succeeded) >= len(results) * 0.9
