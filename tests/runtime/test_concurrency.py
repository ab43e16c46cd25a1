"""Several writers on one entity: optimistic concurrency keeps every event and every count."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
from helpers import unique

from thalo.runtime import Runtime
from thalo.store import MessageStore

pytestmark = pytest.mark.wasm

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from thalo.store import open_store
    from thalo.runtime import Runtime

    async def main(url, entity, n):
        async with open_store(url) as store:
            async with Runtime(store, snapshot_every=0, max_retries=1000) as rt:
                await rt.state("Counter", entity)  # load the module before the race
                print("ready", flush=True)
                sys.stdin.readline()  # start together
                for _ in range(n):
                    await rt.execute("Counter", entity, "increment", {"amount": 1})
                print(rt.stats.conflicts, flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def _finish(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    assert proc.stdout is not None and proc.stderr is not None
    out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
    await proc.wait()
    return out, err


def _assert_contiguous_counts(messages: list, expected: int) -> None:
    assert [m.position for m in messages] == list(range(expected))
    assert [m.data["count"] for m in messages] == list(range(1, expected + 1)), (
        "a lost update: some command decided on a stale count"
    )


async def test_two_processes_on_one_entity(
    published_store_url: str, rt_store: MessageStore
) -> None:
    entity, n = unique("race"), 60
    procs = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", WORKER, published_store_url, entity, str(n)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for proc in procs:  # both have loaded the module: start them together
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        assert line.strip() == b"ready", (line, await proc.stderr.read() if proc.stderr else b"")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    results = await asyncio.gather(*(_finish(p) for p in procs))
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
    conflicts = sum(int(out.split()[-1]) for out, _ in results)
    assert conflicts > 0, "the two processes never raced: the test proves nothing"
    messages = await rt_store.get_stream_messages(f"counter-{entity}", 0, -1)
    _assert_contiguous_counts(messages, 2 * n)


async def test_two_runtimes_in_one_process(rt_store: MessageStore) -> None:
    """Two runtimes (two caches) racing: every conflict is caught up and retried."""
    entity, n = unique("race"), 20
    runtimes = [Runtime(rt_store, snapshot_every=0, max_retries=100) for _ in range(2)]
    try:

        async def work(rt: Runtime) -> None:
            for _ in range(n):
                await rt.execute("Counter", entity, "increment", {"amount": 1})

        await asyncio.gather(*(work(rt) for rt in runtimes))
        assert sum(rt.stats.conflicts for rt in runtimes) > 0
    finally:
        for rt in runtimes:
            await rt.close()
    messages = await rt_store.get_stream_messages(f"counter-{entity}", 0, -1)
    _assert_contiguous_counts(messages, 2 * n)


async def test_a_lost_race_rebuilds_then_catches_up(rt_store: MessageStore) -> None:
    """A stale cached entity loses the race. The first loss comes after ``execute``
    applied the command's events in the guest, so the entity is rebuilt; later
    losses (now deciding and applying in two calls) are caught up. Either way the
    retried command decides on the true count."""
    entity = unique("stale")
    stale, other = Runtime(rt_store, snapshot_every=0), Runtime(rt_store, snapshot_every=0)
    try:
        assert (await stale.execute("Counter", entity, "increment", {"amount": 1}))[0].data[
            "count"
        ] == 1
        for expected_conflicts, count in ((1, 4), (2, 7)):
            await other.execute("Counter", entity, "increment", {"amount": 1})
            await other.execute("Counter", entity, "increment", {"amount": 1})
            (event,) = await stale.execute("Counter", entity, "increment", {"amount": 1})
            assert stale.stats.conflicts == expected_conflicts
            assert (event.position, event.data["count"]) == (count - 1, count)
        # Without further races the entity keeps deciding on the right state.
        (event,) = await stale.execute("Counter", entity, "increment", {"amount": 1})
        assert (event.data["count"], stale.stats.conflicts) == (8, 2)
    finally:
        await stale.close()
        await other.close()
    messages = await rt_store.get_stream_messages(f"counter-{entity}", 0, -1)
    _assert_contiguous_counts(messages, 8)


async def test_concurrent_commands_for_many_entities(runtime: Runtime) -> None:
    """Commands for different entities run together (the store batches their commits)."""
    ids = [unique("m") for _ in range(16)]
    await asyncio.gather(
        *(runtime.execute("Counter", i, "increment", {"amount": 1}) for i in ids for _ in range(3))
    )
    for i in ids:
        messages = await runtime.store.get_stream_messages(f"counter-{i}")
        assert [m.data["count"] for m in messages] == [1, 2, 3]
