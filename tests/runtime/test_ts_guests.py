"""TypeScript guests in the runtime: the guest conformance suite (thalo.testing.guests)
holds Python and TypeScript builds of one ESDL to the same transcript, and one runtime
serves guests of both languages, even on one stream across versions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from components import Built

from thalo.cli.build import build_project
from thalo.registry import Registry
from thalo.runtime import Runtime
from thalo.store import open_store
from thalo.testing.guests import BANK_ACCOUNT, COUNTER, Scenario, Step, run_scenario

pytestmark = pytest.mark.wasm
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scenario", [BANK_ACCOUNT, COUNTER], ids=lambda s: s.aggregate)
def test_python_and_typescript_builds_conform(
    scenario: Scenario, built: dict[str, Built], built_ts: dict[str, Built], tmp_path: Path
) -> None:
    python = run_scenario(built[scenario.aggregate].wasm, scenario, tmp_path / "python")
    typescript = run_scenario(built_ts[scenario.aggregate].wasm, scenario, tmp_path / "ts")
    assert typescript == python
    assert all(typescript.snapshots.values())  # snapshots were written and restored


def test_a_plain_javascript_guest_is_checked_by_the_same_suite_unchanged(
    built_ts: dict[str, Built], tmp_path: Path
) -> None:
    project = Path(__file__).parent / "guests" / "counter-js"
    wasm = build_project(project, tmp_path / "counter-js.wasm").path.read_bytes()
    javascript = run_scenario(wasm, COUNTER, tmp_path / "js")
    assert javascript == run_scenario(built_ts["Counter"].wasm, COUNTER, tmp_path / "ts")


def test_the_suite_catches_a_guest_that_strays(built_ts: dict[str, Built], tmp_path: Path) -> None:
    # The same TypeScript build against a scenario expecting another balance: it must fail.
    strict = Scenario(
        "BankAccount",
        (
            Step(
                "acc-1",
                "open_account",
                {"initial_balance": 1},
                (("OpenedAccount", {"initial_balance": 2}),),
            ),
        ),
        {"acc-1": {"balance": 1, "closed": False, "opened": True}},
    )
    with pytest.raises(AssertionError, match=r"step 0 \(acc-1 open_account"):
        run_scenario(built_ts["BankAccount"].wasm, strict, tmp_path)
    wrong_state = Scenario("BankAccount", strict.steps[:0], {"acc-9": {"balance": 5}})
    with pytest.raises(AssertionError, match="acc-9 rebuilt"):
        run_scenario(built_ts["BankAccount"].wasm, wrong_state, tmp_path / "again")


async def test_one_runtime_serves_python_and_typescript_and_a_stream_changes_language(
    built: dict[str, Built], built_ts: dict[str, Built], counter_ts_v2: Built, tmp_path: Path
) -> None:
    url = f"sqlite:///{(tmp_path / 'mixed.db').as_posix()}"
    async with open_store(url) as store:
        registry = Registry(store)
        python_counter, ts_bank = built["Counter"], built_ts["BankAccount"]
        await registry.publish(python_counter.schema_text, python_counter.wasm)
        await registry.publish(ts_bank.schema_text, ts_bank.wasm)
        async with Runtime(store, snapshot_every=2, module_check_interval=0.0) as runtime:
            for amount in (2, 3):
                await runtime.execute("Counter", "c-1", "increment", {"amount": amount})
            opened = await runtime.execute(
                "BankAccount", "a-1", "open_account", {"initial_balance": 9}
            )
            assert [(m.type, m.data) for m in opened] == [("OpenedAccount", {"initial_balance": 9})]
            assert (await runtime.state("Counter", "c-1")).module_version == "0.1.0"

            # Counter 0.2.0 is the TypeScript build: the stream written by Python goes on.
            await registry.publish(counter_ts_v2.schema_text, counter_ts_v2.wasm)
            events = await runtime.execute("Counter", "c-1", "increment", {"amount": 4})
            assert [(m.type, m.data) for m in events] == [
                ("Incremented", {"amount": 4, "count": 9, "sequence": None})
            ]
            state = await runtime.state("Counter", "c-1")
            assert (state.module_version, state.state) == ("0.2.0", {"count": 9, "sequence": None})
            deposit = await runtime.execute("BankAccount", "a-1", "deposit_funds", {"amount": 1})
            assert deposit[0].data == {"amount": 1, "balance": 10}
        async with Runtime(store) as fresh:  # rebuilt from Python events (and snapshots) by TS
            again = await fresh.execute("Counter", "c-1", "decrement", {"amount": 9})
            assert again[0].data == {"amount": 9, "count": 0, "sequence": None}
            stream = await store.get_stream_messages("counter-c-1", 0, -1)
            assert [m.data["count"] for m in stream] == [2, 5, 9, 0]


async def test_a_typescript_0_2_0_upcasts_the_events_0_1_0_wrote(
    built_ts: dict[str, Built], bank_ts_v2: Built, tmp_path: Path
) -> None:
    """The ESDL default fills ``memo``, the module's ``upcast`` override fills ``currency``."""
    url = f"sqlite:///{(tmp_path / 'upcast.db').as_posix()}"
    async with open_store(url) as store:
        registry = Registry(store)
        old = built_ts["BankAccount"]
        await registry.publish(old.schema_text, old.wasm)
        async with Runtime(store, snapshot_every=0) as runtime:
            await runtime.execute("BankAccount", "a-1", "open_account", {"initial_balance": 10})
            await runtime.execute("BankAccount", "a-1", "deposit_funds", {"amount": 5})
        await registry.publish(bank_ts_v2.schema_text, bank_ts_v2.wasm)
        async with Runtime(store, snapshot_every=0) as runtime:
            (event,) = await runtime.execute(
                "BankAccount", "a-1", "deposit_funds", {"amount": 3, "memo": "gift"}
            )
            assert event.data == {"amount": 3, "balance": 18, "memo": "gift", "currency": "CHF"}
            now = await runtime.state("BankAccount", "a-1")
        assert now.module_version == "0.2.0"
        assert now.state["deposits"] == [[5, "(none)", "EUR"], [3, "gift", "CHF"]]
        stored = await store.get_stream_messages("bankAccount-a-1", 0, 10)
        assert [m.meta("schemaVersion") for m in stored] == ["1", "1", "2"]


def test_the_typescript_harness_upcasts_like_a_replay(bank_ts_v2: Built) -> None:
    """``AggregateTest.givenStored`` under Node, in the 0.2.0 project's own ``npm test``."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    project = bank_ts_v2.schema_path.parent
    modules = project / "node_modules"
    if not modules.exists():
        modules.symlink_to(ROOT / "node_modules", target_is_directory=True)
    done = subprocess.run(
        [npm, "test"], cwd=project, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "# pass 1" in done.stdout and "# fail 0" in done.stdout
