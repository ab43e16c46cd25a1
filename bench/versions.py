"""What living with versions costs: the compatibility check at publish, and replays.

- ``Registry.compatibility`` (what ``thalo publish`` runs before building) on a
  store with bank_account 0.1.0 published and ``--accounts`` accounts' events.
- Cold rebuild of one entity with ``--events`` deposits, replayed by 0.1.0 (no
  event versions) and by a 0.2.0 whose only change is
  ``event DepositedFunds version 2`` with an optional ``memo = "(none)"``:
  on events at the current version (target: no measurable difference), and on
  events 0.1.0 wrote (each one upcast: the default filled, the stored version
  passed to the guest). Runs alternate; medians.

    python bench/versions.py [--postgres-url URL] [--accounts 200] [--events 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from thalo.cli.build import build_project
from thalo.core import NewMessage
from thalo.esdl import parse
from thalo.registry import Registry
from thalo.runtime import Runtime
from thalo.store import MessageStore, open_store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bank_account"
V1_ESDL = (EXAMPLE / "bank_account.esdl").read_text("utf-8")
V2_ESDL = V1_ESDL.replace('version = "0.1.0"', 'version = "0.2.0"').replace(
    "event DepositedFunds {", 'event DepositedFunds version 2 {\n  memo: String? = "(none)"'
)


def build_v2(workdir: Path) -> bytes:
    project = workdir / "bank_account_v2"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    (project / "bank_account.esdl").write_text(V2_ESDL)
    return build_project(project, workdir / "v2.wasm").path.read_bytes()


async def compatibility(store: MessageStore, registry: Registry, accounts: int) -> None:
    async with Runtime(store, registry=registry) as runtime:
        for i in range(accounts):
            await runtime.execute("BankAccount", f"a{i}", "open_account", {"initial_balance": 1})
            await runtime.execute("BankAccount", f"a{i}", "deposit_funds", {"amount": 1})
    schema = parse(V2_ESDL)
    times = []
    for _ in range(30):
        started = time.perf_counter()
        await registry.compatibility(schema)
        times.append(time.perf_counter() - started)
    print(
        f"  compatibility check ({accounts} accounts stored)   "
        f"median {statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms"
    )


async def replays(store: MessageStore, registry: Registry, events: int) -> None:
    def deposits(version: str, schema_version: str) -> list[NewMessage]:
        meta = {"thaloModuleVersion": version, "schemaVersion": schema_version}
        return [
            NewMessage("OpenedAccount", {"initial_balance": 0}, {**meta, "schemaVersion": "1"}),
            *(
                NewMessage("DepositedFunds", {"amount": 1, "balance": i + 1}, meta)
                for i in range(events)
            ),
        ]

    await store.write_messages("bankAccount-current", deposits("0.2.0", "2"), -1)
    await store.write_messages("bankAccount-old", deposits("0.1.0", "1"), -1)
    cases = {
        "0.1.0, current events": ("current", "0.1.0"),
        "0.2.0, current events": ("current", "0.2.0"),
        "0.2.0, 0.1.0's events (upcast)": ("old", "0.2.0"),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    # One runtime: its modules load once (a state is always rebuilt, never cached);
    # the first round warms them up and is not counted.
    async with Runtime(store, registry=registry, snapshot_every=0) as runtime:
        for round_ in range(8):
            for name, (entity, version) in cases.items():
                started = time.perf_counter()
                state = await runtime.state(
                    "BankAccount", entity, at_position=events, module_version=version
                )
                if round_:
                    times[name].append(time.perf_counter() - started)
                assert state.state["balance"] == events
    for name, values in times.items():
        print(
            f"  cold rebuild, {events} events, {name:32s} "
            f"median {statistics.median(values) * 1000:.1f} ms"
        )


async def bench(label: str, url: str, v1: bytes, v2: bytes, args: argparse.Namespace) -> None:
    print(f"\n{label}")
    async with open_store(url) as store:
        registry = Registry(store)
        await registry.publish(V1_ESDL, v1)
        await compatibility(store, registry, args.accounts)
        await registry.publish(V2_ESDL, v2)
        await replays(store, registry, args.events)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("THALO_BENCH_POSTGRES_URL"),
        help="an empty Message DB database (thalo store init URL first); omit to skip",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="thalo-bench-versions-"))
    v1 = build_project(EXAMPLE, workdir / "v1.wasm").path.read_bytes()
    v2 = build_v2(workdir)
    await bench("SQLite", f"sqlite:///{workdir / 'thalo.db'}", v1, v2, args)
    if args.postgres_url:
        await bench("Message DB", args.postgres_url, v1, v2, args)


if __name__ == "__main__":
    asyncio.run(main())
