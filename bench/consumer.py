"""Read-side throughput and latency: projections against the store's raw category reads, same run.

Per backend (SQLite file; Message DB when a PostgreSQL URL is given), medians
of ``--repeat`` runs over ``--events`` events in one category (100 streams):

- **raw read**: ``get_category_messages`` in batches of 1000 from 1 to the end,
  nothing else: the ceiling of any consumer on that store.
- **no-op projection**: a ``Projection`` with a handler that does nothing,
  caught up from position 1 by ``ProjectionRunner``; ratio against raw read
  (target ≥ 0.7).
- **read model**: a ``ReadModel`` upserting one row per event in the store's
  own database, positions in the same transactions (batches of 1000) (target
  on SQLite ≥ 20,000 events/s); the catch-up time of ``--events`` events.
- **live latency**: an idle projection; ``--pings`` events written one at a
  time, ~50 ms apart; write (before the call) → handler, p50 and p99
  (target p50 ≤ 50 ms).

    python bench/consumer.py [--events 100000] [--repeat 3] [--postgres-url URL] [--only sqlite]

The PostgreSQL URL defaults to $THALO_BENCH_POSTGRES_URL or $THALO_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from thalo.consumer import Projection, ProjectionRunner, ReadModel
from thalo.core import Message, NewMessage
from thalo.store import MessageStore, SqlTransaction, open_store


async def fill(store: MessageStore, category: str, events: int) -> None:
    per = events // 100
    for s in range(100):
        for start in range(0, per, 1000):
            n = min(1000, per - start)
            await store.write_messages(
                f"{category}-s{s}", [NewMessage("Happened", {"n": start + i}) for i in range(n)]
            )


async def raw_read(store: MessageStore, category: str) -> float:
    started = time.perf_counter()
    position, count = 1, 0
    while True:
        batch = await store.get_category_messages(category, position, 1000)
        if not batch:
            break
        count += len(batch)
        position = batch[-1].global_position + 1
    return count / (time.perf_counter() - started)


async def noop(store: MessageStore, category: str, events: int) -> float:
    projection = Projection(f"noop{uuid.uuid4().hex[:8]}", category)
    projection.on("Happened")(lambda m: None)
    started = time.perf_counter()
    await ProjectionRunner(store, projection).run(until_caught_up=True, register=False)
    return events / (time.perf_counter() - started)


async def read_model(store: MessageStore, category: str, events: int) -> float:
    tag = uuid.uuid4().hex[:8]
    table = f"bench_{tag}"
    model = ReadModel(f"rm{tag}", category)

    @model.setup
    async def create(tx: SqlTransaction) -> None:
        await tx.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, n BIGINT)")

    @model.on("Happened")
    async def upsert(message: Message, tx: SqlTransaction) -> None:
        await tx.execute(
            f"INSERT INTO {table} (id, n) VALUES (%s, %s) "
            "ON CONFLICT (id) DO UPDATE SET n = excluded.n",
            (message.stream_name, message.data["n"]),
        )

    started = time.perf_counter()
    await ProjectionRunner(store, model).run(until_caught_up=True, register=False)
    rate = events / (time.perf_counter() - started)
    async with store.transaction() as tx:
        await tx.execute(f"DROP TABLE {table}")
    return rate


async def live(store: MessageStore, pings: int) -> list[float]:
    category = f"live{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    projection = Projection(f"live{uuid.uuid4().hex[:8]}", category)
    projection.on("Ping")(lambda m: latencies.append(time.perf_counter() - m.data["t"]))
    stop = asyncio.Event()
    task = asyncio.create_task(
        ProjectionRunner(store, projection, idle_timeout=10).run(stop, register=False)
    )
    await asyncio.sleep(0.5)
    for _ in range(pings):
        await store.write_message(f"{category}-1", NewMessage("Ping", {"t": time.perf_counter()}))
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    stop.set()
    await task
    return sorted(latencies)


async def bench(url: str, label: str, events: int, repeat: int, pings: int) -> None:
    async with open_store(url) as store:
        category = f"bench{uuid.uuid4().hex[:8]}"
        t = time.perf_counter()
        await fill(store, category, events)
        print(f"[{label}] wrote {events:,} events in {time.perf_counter() - t:.1f} s")
        raws, noops, models = [], [], []
        for _ in range(repeat):  # alternate, so drift hits all alike
            raws.append(await raw_read(store, category))
            noops.append(await noop(store, category, events))
            models.append(await read_model(store, category, events))
        raw, no, rm = (statistics.median(x) for x in (raws, noops, models))
        lat = await live(store, pings)
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"[{label}] raw category read     {raw:>10,.0f} ev/s")
    print(
        f"[{label}] no-op projection      {no:>10,.0f} ev/s   {no / raw:.2f}x raw (target >= 0.7)"
    )
    target = " (target >= 20,000 ev/s)" if label == "sqlite" else ""
    print(f"[{label}] read model (tx)       {rm:>10,.0f} ev/s   {rm / raw:.2f}x raw{target}")
    print(
        f"[{label}] catch-up {events:,} events: no-op {events / no:.2f} s, read model "
        f"{events / rm:.2f} s"
    )
    print(
        f"[{label}] live latency ({len(lat)} events) p50 {p50 * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms (target p50 <= 50 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pings", type=int, default=100)
    parser.add_argument("--only", choices=["sqlite", "messagedb"])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("THALO_BENCH_POSTGRES_URL")
        or os.environ.get("THALO_TEST_POSTGRES_URL"),
    )
    args = parser.parse_args()
    if args.only != "messagedb":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            asyncio.run(bench(url, "sqlite", args.events, args.repeat, args.pings))
    if args.only != "sqlite":
        if not args.postgres_url:
            print("[messagedb] skipped: give --postgres-url or THALO_TEST_POSTGRES_URL")
        else:
            asyncio.run(bench(args.postgres_url, "messagedb", args.events, args.repeat, args.pings))


if __name__ == "__main__":
    main()
