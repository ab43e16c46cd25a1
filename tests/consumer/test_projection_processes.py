"""``thalo projection run`` as real processes: SIGKILL mid-batch, SIGTERM, a group of three."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import query, write_events

from thalo.core import NewMessage
from thalo.store import consumer_group_member, open_store
from thalo.testing.conformance import unique_category

THALO = str(Path(sys.executable).with_name("thalo"))
PROCS = Path(__file__).with_name("procs.py")


@contextmanager
def running(obj: str, url: str, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [THALO, "projection", "run", f"{PROCS}:{obj}", "--quiet", *args],
        env={**os.environ, **env, "THALO_STORE": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


async def wait_for(url: str, sql: str, done: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    value = 0
    while time.monotonic() < deadline:
        try:
            value = int((await query(url, sql))[0][0] or 0)
        except Exception:  # the table is not there yet
            value = 0
        if value >= done:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{sql}: {value}, expected {done}")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


async def test_sigkill_mid_batch_then_restart(backend_url: str, tmp_path: Path) -> None:
    """At least once: every event in the log; transactional: every row applied exactly once."""
    cat = unique_category("kill")
    table = f"t_{cat}"
    log = tmp_path / "log.txt"
    env = {
        "THALO_TEST_CATEGORY": cat,
        "THALO_TEST_NAME": cat,
        "THALO_TEST_TABLE": table,
        "THALO_TEST_LOG": str(log),
        "THALO_TEST_DELAY": "0.002",
    }
    async with open_store(backend_url) as store:
        await write_events(store, cat, 1500)
    count = f"SELECT count(*) FROM {table}"
    with running("projections", backend_url, env) as proc:
        # Killed once some batches of 200 committed, in the middle of another.
        applied = await wait_for(backend_url, count, 300)
        proc.kill()
        proc.wait()
    assert applied < 1500
    env["THALO_TEST_DELAY"] = "0"
    with running("projections", backend_url, env) as proc:
        await wait_for(backend_url, count, 1500)
        deadline = time.monotonic() + 60
        while len(set(log.read_text().split())) < 1500 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop(proc)
    rows = await query(backend_url, f"SELECT count(*), min(times), max(times) FROM {table}")
    assert rows == [(1500, 1, 1)]  # exactly once
    logged = [int(x) for x in log.read_text().split()]
    assert len(set(logged)) == 1500  # at least once: nothing lost


async def test_group_of_three_processes_covers_the_category_exactly_once(
    backend_url: str,
) -> None:
    cat = unique_category("group")
    table = f"t_{cat}"
    base = {"THALO_TEST_CATEGORY": cat, "THALO_TEST_NAME": cat, "THALO_TEST_TABLE": table}
    async with open_store(backend_url) as store:
        for entity in range(30):
            await store.write_messages(
                f"{cat}-{entity}", [NewMessage("Happened", {}) for _ in range(20)]
            )
        messages = await store.get_category_messages(cat, 1, -1)
    procs = []
    try:
        for member in range(3):
            env = {**base, "THALO_TEST_MEMBER": str(member)}
            cm = running(
                "read_model_only",
                backend_url,
                env,
                "--group-member",
                str(member),
                "--group-size",
                "3",
            )
            procs.append((cm, cm.__enter__()))
        await wait_for(backend_url, f"SELECT count(*) FROM {table}", 600)
        await asyncio.sleep(0.5)  # anything extra would show now
        for _, proc in procs:
            stop(proc)
    finally:
        for cm, _ in procs:
            cm.__exit__(None, None, None)
    rows = await query(backend_url, f"SELECT global_position, times, member FROM {table}")
    expected = {m.global_position: consumer_group_member(m.stream_name, 3) for m in messages}
    assert {r[0]: int(r[2]) for r in rows} == expected  # each where Message DB's hash puts it
    assert {r[1] for r in rows} == {1}
    assert len({int(r[2]) for r in rows}) == 3


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
async def test_signal_records_position(tmp_path: Path, signal_number: int) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    cat = unique_category("sig")
    log = tmp_path / "log.txt"
    env = {
        "THALO_TEST_CATEGORY": cat,
        "THALO_TEST_NAME": cat,
        "THALO_TEST_TABLE": f"t_{cat}",
        "THALO_TEST_LOG": str(log),
    }
    async with open_store(url) as store:
        await write_events(store, cat, 120)  # not a multiple of the interval (50)
    with running("projections", url, env) as proc:
        await wait_for(url, f"SELECT count(*) FROM t_{cat}", 120)
        while not log.exists() or len(log.read_text().split()) < 120:  # may not exist yet
            await asyncio.sleep(0.05)
        proc.send_signal(signal_number)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    async with open_store(url) as store:
        last = await store.get_last_stream_message(f"{cat}:position-{cat}_log")
    assert last is not None and last.data == {"position": 120}
