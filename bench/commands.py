"""Commands/s for bank_account, against the store's ceiling and the `eventsourcing` library.

Workload (issue 5): open ``--accounts`` accounts, then ``--operations``
deposits/withdrawals spread uniformly over them, with 1 and 16 concurrent
callers, on SQLite and on Message DB. In the same run:

- the store's own append ceiling (``bench/store_append.py``: a bare sqlite3
  INSERT loop / a bare psycopg ``write_message`` loop, one event per commit);
- the same workload on the Python ``eventsourcing`` library (pip install
  'thalo[bench]') with the same database, 16 callers as 16 threads;
- p50/p99 command latency;
- cold rebuild of an entity with ``--rebuild-events`` events, without and with a
  snapshot.

thalo's figure is ``Runtime.record`` (the events are durable when it returns,
as with eventsourcing's ``save``); ``execute`` also reads them back.

Targets: with 16 callers ≥ 4× eventsourcing's commands/s on the same store; a
10,000-event entity rebuilt in < 150 ms without a snapshot and < 20 ms with one.

``--lang typescript`` runs thalo's side on examples/bank_account-ts (componentize-js)
instead of examples/bank_account (componentize-py); the workload is the same.

    python bench/commands.py [--postgres-url URL] [--accounts 1000] [--operations 20000]
        [--lang python|typescript]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import store_append

from thalo.cli.build import build_project
from thalo.core import NewMessage
from thalo.runtime import Runtime
from thalo.store import MessageStore, open_store

ROOT = Path(__file__).resolve().parents[1]
AGGREGATE = "BankAccount"


def workload(accounts: int, operations: int, seed: int = 7) -> list[tuple[int, str, int]]:
    """(account index, command, amount): deposits, and withdrawals small enough to succeed."""
    rng = random.Random(seed)
    ops = []
    for _ in range(operations):
        ops.append(
            (
                rng.randrange(accounts),
                "deposit_funds" if rng.random() < 0.6 else "withdraw_funds",
                rng.randint(1, 5),
            )
        )
    return ops


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- thalo ---------------------------------------------------------------------


async def thalo_run(
    store: MessageStore, accounts: int, ops: list[tuple[int, str, int]], callers: int
) -> tuple[float, float, float]:
    """(commands/s, p50 ms, p99 ms) over opening the accounts plus the operations."""
    prefix = uuid.uuid4().hex[:8]
    jobs: list[tuple[str, str, dict[str, int]]] = [
        (f"{prefix}-{i}", "open_account", {"initial_balance": 1000}) for i in range(accounts)
    ] + [(f"{prefix}-{i}", command, {"amount": amount}) for i, command, amount in ops]
    latencies: list[float] = []
    async with Runtime(store, cache_size=accounts * 2, snapshot_every=0) as runtime:
        await runtime.execute(AGGREGATE, f"{prefix}-warm", "open_account", {"initial_balance": 1})
        queue = iter(())

        async def caller() -> None:
            for entity, command, payload in queue:
                started = time.perf_counter()
                await runtime.record(AGGREGATE, entity, command, payload)
                latencies.append(time.perf_counter() - started)

        # Opening must precede operations on the same account: with several callers an
        # operation could overtake its open, so the opens run first, then the rest.
        started = time.perf_counter()
        opens, rest = jobs[:accounts], jobs[accounts:]
        for part in (opens, rest):
            queue = iter(part)
            await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - started
    return (
        len(jobs) / elapsed,
        _percentile(latencies, 0.5) * 1e3,
        _percentile(latencies, 0.99) * 1e3,
    )


async def rebuild_times(store: MessageStore, events: int) -> tuple[float, float]:
    """Cold rebuild (ms) of one entity with ``events`` events: without, then with a snapshot."""
    entity = f"rebuild-{uuid.uuid4().hex[:8]}"
    stream = f"bankAccount-{entity}"
    await store.write_message(stream, NewMessage("OpenedAccount", {"initial_balance": 0}), -1)
    batch = 500
    for start in range(1, events, batch):
        count = min(batch, events - start)
        messages = [
            NewMessage("DepositedFunds", {"amount": 1, "balance": start + i}) for i in range(count)
        ]
        await store.write_messages(stream, messages, start - 1)

    async def cold(snapshot_every: int) -> float:
        runs = []
        for _ in range(3):
            async with Runtime(store, snapshot_every=snapshot_every) as runtime:
                await runtime.modules.current(AGGREGATE)  # module loading is not rebuilding
                started = time.perf_counter()
                state = await runtime.state(AGGREGATE, entity)
                runs.append(time.perf_counter() - started)
                assert state.version == events - 1, state.version
        return statistics.median(runs) * 1e3

    without = await cold(0)
    async with Runtime(store, snapshot_every=1) as runtime:
        hydrated = await runtime.entities.get(
            await runtime.modules.current(AGGREGATE), stream, entity
        )
        await runtime.entities.write_snapshot(hydrated)
    with_snapshot = await cold(100)
    return without, with_snapshot


# --- the eventsourcing library -------------------------------------------------------


# --- driver --------------------------------------------------------------------


def _print(label: str, value: float, unit: str, note: str = "") -> None:
    print(f"  {label:<52} {value:>10,.1f} {unit:<12} {note}")


async def bench_backend(
    name: str,
    url: str,
    es_env: dict[str, str],
    args: argparse.Namespace,
    ceiling: Callable[[], Any],
) -> None:
    print(f"\n{name}: {args.accounts} accounts opened, then {args.operations} deposits/withdrawals")
    ops = workload(args.accounts, args.operations)
    async with open_store(url) as store:
        from thalo.registry import Registry

        project = (
            ROOT / "examples" / ("bank_account-ts" if args.lang == "typescript" else "bank_account")
        )
        built = build_project(project, Path(tempfile.mkdtemp()) / "b.wasm")
        await Registry(store).publish(
            (project / "bank_account.esdl").read_text(), built.path.read_bytes()
        )
        print(f"  guest: {project.name} ({args.lang})")
        ceiling_rate = await ceiling()
        _print("store ceiling: one event per commit", ceiling_rate, "events/s")
        results: dict[int, float] = {}
        for callers in (1, 16):
            rate, p50, p99 = await thalo_run(store, args.accounts, ops, callers)
            results[callers] = rate
            _print(
                f"thalo, {callers} caller(s)",
                rate,
                "commands/s",
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            )
        es: dict[int, float] = {}
        if es_env:
            for callers in (1, 16):
                import eventsourcing_bank

                es[callers] = await asyncio.to_thread(
                    eventsourcing_bank.run, es_env, args.accounts, ops, callers
                )
                _print(f"eventsourcing {callers} caller(s)", es[callers], "commands/s")
            ratio = results[16] / es[16]
            verdict = "meets" if ratio >= 4 else "MISSES"
            _print("ratio thalo/eventsourcing, 16 callers", ratio, "x", f"{verdict} target ≥ 4x")
        _print("ratio thalo 16 callers / store ceiling", results[16] / ceiling_rate, "x")
        without, with_snapshot = await rebuild_times(store, args.rebuild_events)
        _print(
            f"cold rebuild, {args.rebuild_events} events, no snapshot",
            without,
            "ms",
            "meets < 150 ms" if without < 150 else "MISSES < 150 ms",
        )
        _print(
            "cold rebuild, from a snapshot",
            with_snapshot,
            "ms",
            "meets < 20 ms" if with_snapshot < 20 else "MISSES < 20 ms",
        )


def _eventsourcing_available() -> bool:
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        print("eventsourcing is not installed (pip install -e '.[bench]'): skipping that baseline")
        return False
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--operations", type=int, default=20_000)
    parser.add_argument("--rebuild-events", type=int, default=10_000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("THALO_BENCH_POSTGRES_URL")
        or os.environ.get("THALO_TEST_POSTGRES_URL"),
        help="Message DB database (thalo store init URL first); omit to skip PostgreSQL",
    )
    parser.add_argument("--only", choices=["sqlite", "messagedb"])
    parser.add_argument(
        "--lang",
        choices=["python", "typescript"],
        default="python",
        help="the language of the bank_account guest thalo runs",
    )
    args = parser.parse_args()
    es = _eventsourcing_available()
    workdir = Path(tempfile.mkdtemp(prefix="thalo-bench-"))

    if args.only in (None, "sqlite"):
        path = workdir / "thalo.db"
        es_env = (
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(workdir / "es.db")}
            if es
            else {}
        )

        async def sqlite_ceiling() -> float:
            return store_append.sqlite_ceiling_single(path, "FULL", 2000)

        await bench_backend(
            "SQLite (synchronous=FULL, WAL)", f"sqlite:///{path}", es_env, args, sqlite_ceiling
        )

    if args.only in (None, "messagedb"):
        if not args.postgres_url:
            print("\nMessage DB: skipped (give --postgres-url or set THALO_BENCH_POSTGRES_URL)")
            return
        from urllib.parse import urlsplit

        parts = urlsplit(args.postgres_url)
        es_env = (
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": parts.path.lstrip("/"),
                "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": parts.username or "postgres",
                "POSTGRES_PASSWORD": parts.password or "",
                "POSTGRES_SCHEMA": "eventsourcing_bench",
                "POSTGRES_POOL_SIZE": "16",
                "POSTGRES_MAX_OVERFLOW": "4",
            }
            if es
            else {}
        )

        if es:
            import psycopg

            with psycopg.connect(args.postgres_url, autocommit=True) as connection:
                connection.execute("CREATE SCHEMA IF NOT EXISTS eventsourcing_bench")

        async def pg_ceiling() -> float:
            return await store_append.pg_ceiling_single(args.postgres_url, 1000)

        await bench_backend("Message DB (PostgreSQL)", args.postgres_url, es_env, args, pg_ceiling)


if __name__ == "__main__":
    asyncio.run(main())
