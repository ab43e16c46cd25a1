"""Issue 11: a guest's fault stays its entity's problem, and every command reports what happened.

The hostile guest (tests/guests/hostile) returns output the host cannot
use and snapshots that fail, on request; the item numbers are issue 11's.
"""

from __future__ import annotations

import asyncio

import pytest
from helpers import unique

from thalo.consumer.commands import CommandConsumer
from thalo.errors import (
    CommandTimeout,
    GuestError,
    GuestOutputInvalid,
    GuestTimeout,
    UsageError,
)
from thalo.runtime import SNAPSHOT_TYPE, Runtime
from thalo.store import MessageStore

pytestmark = pytest.mark.wasm


async def _cached_state(runtime: Runtime, entity: str) -> dict[str, object]:
    cached = runtime.cache.get(f"hostile-{entity}")
    assert cached is not None, "the entity is not cached"
    import orjson

    state: dict[str, object] = orjson.loads(cached.wasm.snapshot())
    return state


# --- 1, 12: output the host cannot decode ---------------------------------------------


async def test_1_undecodable_events_evict_the_entity_and_are_a_guest_fault(
    runtime: Runtime,
) -> None:
    entity = unique("r")
    await runtime.execute("Hostile", entity, "note", {"text": "one"})
    with pytest.raises(GuestOutputInvalid) as caught:
        await runtime.execute("Hostile", entity, "overflow", {})
    assert caught.value.exit_code == 4 and caught.value.http_status == 500
    assert isinstance(caught.value, GuestError)
    assert await runtime.store.stream_version(f"hostile-{entity}") == 0  # nothing written
    await runtime.execute("Hostile", entity, "note", {"text": "two"})
    # the guest had applied the Measured (+1000) before the host failed to decode it
    assert (await _cached_state(runtime, entity))["notes"] == 2


# --- 3, 12: output of the wrong shape ------------------------------------------------------


@pytest.mark.parametrize("twist", ["odd:list", "odd:object", "odd:data"])
async def test_3_events_of_the_wrong_shape_are_a_guest_fault(runtime: Runtime, twist: str) -> None:
    entity = unique("r")
    with pytest.raises(GuestOutputInvalid, match="event"):
        await runtime.execute("Hostile", entity, "note", {"text": twist})
    assert await runtime.store.stream_version(f"hostile-{entity}") is None
    await runtime.execute("Hostile", entity, "note", {"text": "fine"})
    assert (await _cached_state(runtime, entity))["notes"] == 1


async def test_3_the_command_consumer_replies_and_moves_on(runtime: Runtime) -> None:
    bad, good = unique("r"), unique("r")
    broken = await runtime.submit("Hostile", bad, "note", {"text": "odd:list"})
    fine = await runtime.submit("Hostile", good, "note", {"text": "fine"})
    consumer = CommandConsumer(runtime, ["Hostile"], name=unique("consumer"))
    assert await consumer.poll() >= 2  # nothing escapes the consumer
    from thalo.errors import CommandFailed

    with pytest.raises(CommandFailed) as failed:
        await runtime.wait(broken, timeout=5)
    assert (failed.value.error, failed.value.exit_code) == ("GuestOutputInvalid", 4)
    assert [e.type for e in await runtime.wait(fine, timeout=5)] == ["Noted"]


# --- 12: events that break the schema are the guest's fault --------------------------------


async def test_12_events_breaking_the_schema_are_a_guest_fault(runtime: Runtime) -> None:
    with pytest.raises(GuestOutputInvalid, match=r"\$\[0\]\.data\.count") as caught:
        await runtime.execute("Liar", unique("x"), "lie", {"count": 1})
    assert caught.value.exit_code == 4
    assert [v.path for v in caught.value.violations] == ["$[0].data.count"]


# --- 2, 4: snapshots that fail after the write -------------------------------------------


@pytest.mark.parametrize("mode", ["raise", "bad-json"])
async def test_2_4_a_failing_snapshot_never_fails_a_stored_command(
    rt_store: MessageStore, mode: str
) -> None:
    entity = unique("r")
    async with Runtime(rt_store, snapshot_every=3) as runtime:
        await runtime.execute("Hostile", entity, "arm", {"mode": mode})
        for n in range(7):  # snapshots would be due at versions 2 and 5
            events = await runtime.execute("Hostile", entity, "note", {"text": f"n{n}"})
            assert events[0].position == n + 1
        assert runtime.stats.snapshot_failures == 1  # then snapshots stop for the entity
        snapshots = await rt_store.get_stream_messages(f"hostile:snapshot-{entity}", 0, 10)
        assert snapshots == []
        assert await rt_store.stream_version(f"hostile-{entity}") == 7


async def test_2_a_snapshot_that_loops_is_cut_off_once(rt_store: MessageStore) -> None:
    entity = unique("r")
    async with Runtime(rt_store, snapshot_every=2) as runtime:
        await runtime.execute("Hostile", entity, "arm", {"mode": "loop"})
        for n in range(4):
            await runtime.execute("Hostile", entity, "note", {"text": f"n{n}"})
        assert runtime.stats.snapshot_failures == 1
        assert await rt_store.stream_version(f"hostile-{entity}") == 4


async def test_4_state_with_an_invalid_snapshot_is_a_guest_fault(runtime: Runtime) -> None:
    entity = unique("r")
    await runtime.execute("Hostile", entity, "arm", {"mode": "bad-json"})
    with pytest.raises(GuestOutputInvalid, match="snapshot"):
        await runtime.state("Hostile", entity)


# --- 6: a snapshot that cannot be restored -------------------------------------------


@pytest.mark.parametrize("mode", ["restore-trap", "restore-loop"])
async def test_6_a_bad_snapshot_falls_back_to_replay_and_is_not_used_again(
    rt_store: MessageStore, mode: str
) -> None:
    entity = unique("r")
    async with Runtime(rt_store, snapshot_every=2) as writer:
        await writer.execute("Hostile", entity, "arm", {"mode": mode})
        await writer.execute("Hostile", entity, "note", {"text": "a"})  # snapshot at version 1
    snapshot = await rt_store.get_last_stream_message(f"hostile:snapshot-{entity}", SNAPSHOT_TYPE)
    assert snapshot is not None and snapshot.data["state"]["mode"] == mode
    async with Runtime(rt_store, snapshot_every=0) as reader:
        events = await reader.execute("Hostile", entity, "note", {"text": "b"})
        assert events[0].position == 2
        assert reader.stats.restore_failures == 1
        reader.cache.clear()
        await reader.execute("Hostile", entity, "note", {"text": "c"})
        assert reader.stats.restore_failures == 1  # the bad snapshot was not tried again
        assert (await reader.state("Hostile", entity)).version == 3


# --- 20: time travel past the end ------------------------------------------------------


async def test_20_state_past_the_end_of_the_stream_says_where_it_ends(runtime: Runtime) -> None:
    entity = unique("c")
    for _ in range(3):
        await runtime.execute("Counter", entity, "increment", {"amount": 1})
    with pytest.raises(UsageError, match="ends at position 2"):
        await runtime.state("Counter", entity, at_position=99)
    with pytest.raises(UsageError, match="has no events"):
        await runtime.state("Counter", unique("none"), at_position=0)
    assert (await runtime.state("Counter", entity, at_position=2)).version == 2


# --- 21: async commands with any command id, once --------------------------------------


async def test_21_async_takes_any_command_id_and_a_repeat_writes_nothing(
    runtime: Runtime,
) -> None:
    entity = unique("c")
    first = await runtime.submit("Counter", entity, "increment", {"amount": 2}, command_id="k1")
    again = await runtime.submit("Counter", entity, "increment", {"amount": 2}, command_id="k1")
    assert again.position == -1 and again.reply_stream_name == first.reply_stream_name
    commands = await runtime.store.get_stream_messages(f"counter:command-{entity}", 0, 10)
    assert len(commands) == 1
    with pytest.raises(CommandTimeout, match=r"queued .* at position 0 .* will run"):
        await runtime.wait(first, timeout=0.2)
    await CommandConsumer(runtime, ["Counter"], name=unique("consumer")).poll()
    events = await runtime.wait(again, timeout=5)
    assert [e.data["count"] for e in events] == [2]
    assert events[0].meta("thaloCommandId") == "k1"


# --- 27: one reply per command ------------------------------------------------------------


async def test_27_a_redelivered_command_is_replied_once(runtime: Runtime) -> None:
    entity = unique("c")
    submitted = await runtime.submit("Counter", entity, "increment", {"amount": 1})
    await CommandConsumer(runtime, ["Counter"], group_member=0, group_size=1).poll()
    other = Runtime(runtime.store, snapshot_every=0)
    try:
        await CommandConsumer(other, ["Counter"], group_member=0, group_size=1).poll()
    finally:
        await other.close()
    assert submitted.reply_stream_name is not None
    replies = await runtime.store.get_stream_messages(submitted.reply_stream_name, 0, 10)
    assert [r.type for r in replies] == ["CommandSucceeded"]


# --- 8: a slow guest call holds up no other entity ---------------------------------------


async def test_8_a_slow_call_holds_up_no_other_entity(runtime: Runtime) -> None:
    loop = asyncio.get_running_loop()
    # Both modules loaded first: what is timed below is commands, not a cold load.
    await runtime.execute("Counter", unique("warm"), "increment", {"amount": 1})
    await runtime.execute("Hostile", unique("warm"), "greet", {})
    slow = asyncio.create_task(
        runtime.execute("Hostile", unique("slow"), "dawdle", {"rounds": 100_000})
    )
    await asyncio.sleep(0.2)  # the dawdle is running, to its 2 s budget
    started = loop.time()
    counted = await runtime.execute("Counter", unique("c"), "increment", {"amount": 1})
    greeted = await runtime.execute("Hostile", unique("other"), "greet", {})
    elapsed = loop.time() - started
    assert not slow.done(), "the other commands waited for the slow one"
    assert elapsed < 1.5  # the slow one runs to its 2 s budget
    assert [counted[0].type, greeted[0].type] == ["Incremented", "Greeted"]
    with pytest.raises(GuestTimeout):
        await slow
    # and a command that has been fast runs inline again (no thread hand-off)
    entity = unique("c")
    for _ in range(4):
        await runtime.execute("Counter", entity, "increment", {"amount": 1})
    module = await runtime.modules.current("Counter")
    assert module.calls.inline("increment")
