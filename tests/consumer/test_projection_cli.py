"""`thalo projection status | rebuild | replay-parked` through the real entry point (SQLite)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from thalo.core import NewMessage
from thalo.store import open_store

ROOT = Path(__file__).resolve().parents[2]
THALO = str(Path(sys.executable).with_name("thalo"))
COUNTERS = f"{ROOT / 'examples' / 'counter_read_model' / 'counter_read_model.py'}:counters"
FLAKY = f"{Path(__file__).with_name('flaky.py')}:flaky"


def thalo(*args: str, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [THALO, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == code, f"thalo {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def run_until(target: str, env: dict[str, str], done: Any, timeout: float = 60) -> None:
    """`thalo projection run TARGET` until ``done()`` holds, then SIGTERM (exit 0)."""
    proc = subprocess.Popen(
        [THALO, "projection", "run", target, "--quiet"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the projection did not get there in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def counts(db: Path) -> dict[str, int]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return dict(connection.execute("SELECT id, count FROM counters").fetchall())
    except sqlite3.OperationalError:  # not created yet
        return {}


async def write(url: str, stream: str, *messages: NewMessage) -> None:
    async with open_store(url) as store:
        await store.write_messages(stream, list(messages))


async def last_global(url: str, stream: str) -> int:
    async with open_store(url) as store:
        last = await store.get_last_stream_message(stream)
        assert last is not None
        return last.global_position


def inc(amount: int) -> NewMessage:
    return NewMessage("Incremented", {"amount": amount, "count": 0, "sequence": None})


def test_status_and_rebuild_of_the_counter_read_model(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    env = {"THALO_STORE": url}
    asyncio.run(write(url, "counter-a", inc(2), inc(3)))
    asyncio.run(write(url, "counter-b", inc(1)))
    run_until(COUNTERS, env, lambda: counts(db) == {"a": 5, "b": 1})
    [row] = json.loads(thalo("projection", "status", "--json", env=env).stdout)
    assert (row["name"], row["category"], row["position"], row["lag"]) == (
        "counters",
        "counter",
        3,
        0,
    )
    asyncio.run(write(url, "counter-a", inc(10)))
    [row] = json.loads(thalo("projection", "status", "--json", env=env).stdout)
    assert (row["position"], row["lag"]) == (3, 1)
    assert "counters" in thalo("projection", "status", env=env).stdout
    # someone damaged the table: a rebuild resets it (the reset hook) and replays everything
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE counters SET count = 999")
    thalo("projection", "rebuild", "counters", env=env)
    assert counts(db) == {"a": 15, "b": 1}
    [row] = json.loads(thalo("projection", "status", "--json", env=env).stdout)
    assert (row["position"], row["lag"]) == (asyncio.run(last_global(url, "counter-a")), 0)


def test_replay_parked_redelivers_what_failed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    log = tmp_path / "handled.log"
    env = {
        "THALO_STORE": url,
        "THALO_TEST_NAME": "flaky",
        "THALO_TEST_CATEGORY": "things",
        "THALO_TEST_LOG": str(log),
    }
    happened = [NewMessage("Happened", {"bad": n == 1}) for n in range(3)]
    asyncio.run(write(url, "things-1", *happened))

    def handled() -> list[int]:
        return [int(n) for n in log.read_text().split()] if log.exists() else []

    run_until(FLAKY, {**env, "THALO_TEST_FAIL": "1"}, lambda: handled() == [1, 3])
    [row] = json.loads(thalo("projection", "status", "--json", env=env).stdout)
    assert (row["position"], row["parked"]) == (3, 1)  # it moved on past the parked one
    replayed = thalo("projection", "replay-parked", "flaky", env=env)
    assert handled() == [1, 3, 2], replayed.stdout + replayed.stderr
    thalo("projection", "replay-parked", "flaky", env=env)  # nothing is delivered twice
    assert handled() == [1, 3, 2]


def test_status_lists_the_command_consumer_and_relays_too(tmp_path: Path) -> None:
    """Every consumer of the store shows in `thalo projection status`, not only projections."""
    import uuid

    from thalo.consumer.commands import CommandConsumer
    from thalo.runtime import Runtime

    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {"THALO_STORE": url}
    category = f"relayed{uuid.uuid4().hex[:8]}"
    name = f"relay-{category}"
    asyncio.run(write(url, f"{category}-1", *[NewMessage("Happened", {"n": n}) for n in range(3)]))

    async def consume_commands() -> None:  # what `thalo run` does at start
        async with open_store(url) as store, Runtime(store) as runtime:
            await CommandConsumer(runtime, ["Counter"], name="runner").poll()

    asyncio.run(consume_commands())
    relay = subprocess.Popen(
        [THALO, "relay", category, "--to", "redis://127.0.0.1:6379", "--name", name],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            rows = json.loads(thalo("projection", "status", "--json", env=env).stdout)
            relayed = [r for r in rows if r["name"] == name]
            if relayed and relayed[0]["position"] == 3:
                break
            assert relay.poll() is None, relay.communicate()
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.communicate(timeout=30)
        import redis

        redis.Redis(host="127.0.0.1", port=6379).delete(f"thalo:{category}")
    kinds = {(r["name"], r["kind"], r["category"]) for r in rows}
    assert ("runner", "commands", "counter:command") in kinds
    assert (name, "relay", category) in kinds
    assert [r["lag"] for r in rows if r["name"] == name] == [0]
