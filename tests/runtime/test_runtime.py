"""The runtime against real components on both stores: the flow of one command, and its failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import unique

from thalo.core import NewMessage
from thalo.core import metadata as keys
from thalo.errors import (
    CommandRejected,
    GuestOutputInvalid,
    GuestTimeout,
    GuestTrap,
    PayloadInvalid,
    UnknownAggregate,
    UnknownCommand,
)
from thalo.runtime import SNAPSHOT_TYPE, Runtime
from thalo.store import MessageStore

pytestmark = pytest.mark.wasm


async def test_execute_records_events_with_positions_and_metadata(runtime: Runtime) -> None:
    c = unique("c")
    first = await runtime.execute("Counter", c, "increment", {"amount": 2}, command_id="k1")
    second = await runtime.execute("Counter", c, "decrement", {"amount": 5})
    assert [(m.type, m.position, m.data["count"]) for m in first + second] == [
        ("Incremented", 0, 2),
        ("Decremented", 1, -3),
    ]
    assert first[0].stream_name == f"counter-{c}"
    assert second[0].global_position > first[0].global_position
    assert first[0].meta(keys.COMMAND_ID) == "k1"
    assert first[0].meta(keys.MODULE_VERSION) == "0.1.0"
    state = await runtime.state("Counter", c)
    assert (state.version, state.state["count"]) == (1, -3)


async def test_same_command_id_executes_once(runtime: Runtime) -> None:
    c = unique("c")
    once = await runtime.execute("Counter", c, "increment", {"amount": 2}, command_id="same")
    again = await runtime.execute("Counter", c, "increment", {"amount": 2}, command_id="same")
    assert [m.id for m in again] == [m.id for m in once]
    assert await runtime.store.stream_version(f"counter-{c}") == 0
    # A cold runtime (no cache) still knows the id: it is read back from the events.
    fresh = Runtime(runtime.store, snapshot_every=0)
    try:
        cold = await fresh.execute("Counter", c, "increment", {"amount": 2}, command_id="same")
    finally:
        await fresh.close()
    assert [m.id for m in cold] == [m.id for m in once]
    assert await runtime.store.stream_version(f"counter-{c}") == 0


async def test_bad_input_writes_nothing(runtime: Runtime) -> None:
    a = unique("a")
    stream = f"bankAccount-{a}"
    with pytest.raises(UnknownAggregate, match="'Nope'"):
        await runtime.execute("Nope", a, "open_account", {"initial_balance": 1})
    with pytest.raises(UnknownCommand, match="no command 'rob'"):
        await runtime.execute("BankAccount", a, "rob", {})
    with pytest.raises(PayloadInvalid, match=r"\$\.initial_balance"):
        await runtime.execute("BankAccount", a, "open_account", {"initial_balance": "lots"})
    with pytest.raises(CommandRejected, match="not open") as rejected:
        await runtime.execute("BankAccount", a, "withdraw_funds", {"amount": 1})
    assert rejected.value.exit_code == 1
    assert await runtime.store.stream_version(stream) is None


async def test_bank_account_rules_hold_end_to_end(runtime: Runtime) -> None:
    a = unique("a")
    await runtime.execute("BankAccount", a, "open_account", {"initial_balance": 10})
    await runtime.execute("BankAccount", a, "deposit_funds", {"amount": 5})
    with pytest.raises(CommandRejected, match="insufficient funds"):
        await runtime.execute("BankAccount", a, "withdraw_funds", {"amount": 16})
    with pytest.raises(CommandRejected, match="zero balance"):
        await runtime.execute("BankAccount", a, "close_account", {})
    await runtime.execute("BankAccount", a, "withdraw_funds", {"amount": 15})
    closed = await runtime.execute("BankAccount", a, "close_account", {})
    assert [m.type for m in closed] == ["ClosedAccount"]
    with pytest.raises(CommandRejected, match="closed"):
        await runtime.execute("BankAccount", a, "deposit_funds", {"amount": 1})
    assert await runtime.store.stream_version(f"bankAccount-{a}") == 3


async def test_guest_events_that_break_the_schema_are_not_written(runtime: Runtime) -> None:
    x = unique("x")
    with pytest.raises(GuestOutputInvalid, match=r"returned for 'lie'(.|\n)*\$\[0\]\.data\.count"):
        await runtime.execute("Liar", x, "lie", {"count": 1})
    assert await runtime.store.stream_version(f"liar-{x}") is None
    # The guest had applied the refused event (one call decides and applies):
    # the runtime must not keep that state. `tell` reports how many it applied.
    told = await runtime.execute("Liar", x, "tell", {"count": 1})
    assert (told[0].position, told[0].data) == (0, {"count": 0})
    again = await runtime.execute("Liar", x, "tell", {"count": 1})
    assert (again[0].position, again[0].data) == (1, {"count": 1})
    assert (await runtime.state("Liar", x)).state["applied"] == 2


async def test_an_sdk_refusal_of_undeclared_events_is_a_trap(runtime: Runtime) -> None:
    x = unique("x")
    with pytest.raises(GuestTrap, match="emits only Done"):
        await runtime.execute("Chaos", x, "wrong_event", {})
    assert await runtime.store.stream_version(f"chaos-{x}") is None


async def test_a_trapping_guest_fails_only_its_command(runtime: Runtime) -> None:
    c, x = unique("c"), unique("x")
    await runtime.execute("Counter", c, "increment", {"amount": 1})
    await runtime.execute("Chaos", x, "chat", {"message": "hello"})
    with pytest.raises(GuestTrap) as trapped:
        await runtime.execute("Chaos", x, "crash", {"message": "boom"})
    assert trapped.value.exit_code == 4
    assert await runtime.store.stream_version(f"chaos-{x}") == 0
    # The same entity is rebuilt on a fresh instance; other aggregates never noticed.
    after = await runtime.execute("Chaos", x, "chat", {"message": "again"})
    assert after[0].position == 1
    more = await runtime.execute("Counter", c, "increment", {"amount": 1})
    assert more[0].data["count"] == 2


async def test_a_guest_that_loops_forever_times_out(rt_store: MessageStore) -> None:
    from thalo.wasm import Limits

    async with Runtime(rt_store, limits=Limits(call_seconds=0.5)) as rt:
        x = unique("x")
        with pytest.raises(GuestTimeout):
            await rt.execute("Chaos", x, "spin", {})
        assert await rt_store.stream_version(f"chaos-{x}") is None
        ok = await rt.execute("Chaos", x, "chat", {"message": "still here"})
        assert ok[0].position == 0


async def test_conflict_with_another_writer_is_resolved_by_catching_up(runtime: Runtime) -> None:
    c = unique("c")
    await runtime.execute("Counter", c, "increment", {"amount": 1})  # cached at version 0
    # Another process appends behind this runtime's back.
    external = NewMessage("Incremented", {"amount": 10, "count": 11, "sequence": None})
    await runtime.store.write_message(f"counter-{c}", external, 0)
    result = await runtime.execute("Counter", c, "increment", {"amount": 1})
    assert (result[0].position, result[0].data["count"]) == (2, 12)


async def test_snapshots_are_written_and_used(runtime: Runtime) -> None:
    c = unique("c")
    for _ in range(7):
        await runtime.execute("Counter", c, "increment", {"amount": 1})
    snapshots = await runtime.store.get_stream_messages(f"counter:snapshot-{c}")
    assert [(m.type, m.data["version"]) for m in snapshots] == [(SNAPSHOT_TYPE, 4)]
    assert snapshots[0].data["state"]["count"] == 5
    replayed: list[int] = []
    state = await runtime.state("Counter", c, progress=replayed.append)
    assert (state.version, state.state["count"]) == (6, 7)
    assert sum(replayed) == 2, "a cold rebuild must start from the snapshot"
    # A cold runtime continues correctly from the snapshot.
    fresh = Runtime(runtime.store)
    try:
        more = await fresh.execute("Counter", c, "increment", {"amount": 1})
    finally:
        await fresh.close()
    assert (more[0].position, more[0].data["count"]) == (7, 8)


async def test_time_travel(runtime: Runtime) -> None:
    c = unique("c")
    for amount in (1, 2, 3):
        await runtime.execute("Counter", c, "increment", {"amount": amount})
    messages = await runtime.store.get_stream_messages(f"counter-{c}")
    at0 = await runtime.state("Counter", c, at_position=0)
    at1 = await runtime.state("Counter", c, at_position=1)
    at_time = await runtime.state("Counter", c, at_time=messages[1].time)
    before = await runtime.state("Counter", c, at_time=datetime(2000, 1, 1, tzinfo=UTC))
    assert (at0.state["count"], at1.state["count"], at_time.state["count"]) == (1, 3, 3)
    assert (before.version, before.state["count"]) == (-1, 0)


async def test_new_version_of_an_entity_cache_is_rebuilt(runtime: Runtime) -> None:
    """A cached entity belongs to one module version; eviction and reload keep it correct."""
    runtime.cache.capacity = 1
    a, b = unique("c"), unique("c")
    await runtime.execute("Counter", a, "increment", {"amount": 1})
    await runtime.execute("Counter", b, "increment", {"amount": 1})  # evicts a
    assert len(runtime.cache) == 1
    again = await runtime.execute("Counter", a, "increment", {"amount": 1})
    assert again[0].data["count"] == 2


async def test_entities_sharing_a_trapped_instance_are_rebuilt(runtime: Runtime) -> None:
    x, y = unique("x"), unique("y")
    for entity in (x, y, y):
        await runtime.execute("Chaos", entity, "chat", {"message": "hi"})
    cached = runtime.cache.get(f"chaos-{y}")
    assert cached is not None and cached.wasm.alive
    with pytest.raises(GuestTrap):
        await runtime.execute("Chaos", x, "crash", {"message": "boom"})
    assert not cached.wasm.alive, "y lived in the instance that trapped"
    after = await runtime.execute("Chaos", y, "chat", {"message": "still here"})
    assert after[0].position == 2
    state = await runtime.state("Chaos", y)
    assert state.state["seen"] == 3
