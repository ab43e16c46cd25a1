"""examples/counter_read_model: SIGKILLed mid-batch, restarted, the counters table is exact."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import query
from helpers import EXAMPLES, fresh_database

from thalo.core import NewMessage
from thalo.store import open_store

THALO = str(Path(sys.executable).with_name("thalo"))
TARGET = f"{EXAMPLES / 'counter_read_model' / 'counter_read_model.py'}:counters"


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def counter_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store of the test's own: the example's table and category names are fixed."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'thalo.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


async def test_sigkill_mid_batch_leaves_counters_exact(counter_store: str) -> None:
    expected: dict[str, int] = {}
    async with open_store(counter_store) as store:
        for n in range(40):
            entity = f"c-{n % 8}"
            events = []
            for i in range(250):  # the counter's events: amount, count, sequence
                kind, amount = ("Decremented", -1) if i % 3 == 0 else ("Incremented", 2)
                expected[entity] = expected.get(entity, 0) + amount
                events.append(
                    NewMessage(
                        kind, {"amount": abs(amount), "count": expected[entity], "sequence": None}
                    )
                )
            await store.write_messages(f"counter-{entity}", events)
    env = {**os.environ, "THALO_STORE": counter_store}
    args = [THALO, "projection", "run", TARGET, "--quiet"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Killed as soon as the first batches are in: 10,000 events take several batches.
    rows = "SELECT coalesce(sum(abs(count)), 0) FROM counters"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if (await query(counter_store, rows))[0][0]:
                break
        except Exception:  # the table is not there yet
            pass
        await asyncio.sleep(0.005)
    proc.kill()
    proc.communicate(timeout=30)
    done = (await query(counter_store, "SELECT position FROM thalo_read_model_positions"))[0][0]
    assert 0 < done < 10_000, done  # it died part-way
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        position = "SELECT position FROM thalo_read_model_positions"
        while (await query(counter_store, position))[0][0] < 10_000:
            assert time.monotonic() < deadline + 60
            await asyncio.sleep(0.05)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    table = dict(await query(counter_store, "SELECT id, count FROM counters"))
    assert table == expected
