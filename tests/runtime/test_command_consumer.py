"""Commands through the store: submit, a consuming runtime, replies, consumer groups, positions."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import unique

from thalo.consumer import Consumer
from thalo.consumer.commands import CommandConsumer
from thalo.core import Message
from thalo.errors import CommandFailed, CommandTimeout, PayloadInvalid
from thalo.runtime import Runtime
from thalo.store import MessageStore

pytestmark = pytest.mark.wasm


async def test_submit_then_a_consumer_executes_and_replies(runtime: Runtime) -> None:
    c = unique("c")
    name = unique("consumer")
    submitted = await runtime.submit("Counter", c, "increment", {"amount": 3})
    assert submitted.stream_name == f"counter:command-{c}"
    consumer = CommandConsumer(runtime, ["Counter"], name=name)
    assert await consumer.poll() >= 1
    events = await runtime.wait(submitted, timeout=5)
    assert [(e.type, e.data["count"]) for e in events] == [("Incremented", 3)]
    # Causation metadata points at the command message; the guest saw its position.
    event = events[0]
    assert event.meta("causationMessageStreamName") == submitted.stream_name
    assert event.meta("causationMessagePosition") == submitted.position
    assert event.data["sequence"] == submitted.position


async def test_a_redelivered_command_executes_once(runtime: Runtime) -> None:
    c = unique("c")
    name = unique("consumer")
    await runtime.submit("Counter", c, "increment", {"amount": 1})
    first = CommandConsumer(runtime, ["Counter"], name=name)
    await first.poll()
    # A second consumer of the same name that never saw a recorded position
    # delivers the command again (at least once): nothing new is written.
    again = Runtime(runtime.store, snapshot_every=0)
    try:
        await CommandConsumer(again, ["Counter"], name=unique("other")).poll()
    finally:
        await again.close()
    assert await runtime.store.stream_version(f"counter-{c}") == 0


async def test_failures_are_replied_with_their_exit_code(runtime: Runtime) -> None:
    c = unique("c")
    submitted = await runtime.submit("Counter", c, "increment", {"amount": -1})
    await CommandConsumer(runtime, ["Counter"], name=unique("consumer")).poll()
    with pytest.raises(CommandFailed, match="positive") as failed:
        await runtime.wait(submitted, timeout=5)
    assert (failed.value.error, failed.value.exit_code) == ("CommandRejected", 1)
    assert await runtime.store.stream_version(f"counter-{c}") is None


async def test_invalid_commands_never_enter_a_command_stream(runtime: Runtime) -> None:
    c = unique("c")
    with pytest.raises(PayloadInvalid):
        await runtime.submit("Counter", c, "increment", {"amount": "many"})
    assert await runtime.store.stream_version(f"counter:command-{c}") is None


async def test_waiting_without_a_consumer_times_out(runtime: Runtime) -> None:
    submitted = await runtime.submit("Counter", unique("c"), "increment", {"amount": 1})
    with pytest.raises(CommandTimeout, match="thalo run"):
        await runtime.wait(submitted, timeout=0.2)


class _Recording(CommandConsumer):
    """A command consumer that remembers which command streams it handled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: set[str] = set()

    async def execute(self, aggregate: str, message: Message) -> None:
        self.seen.add(message.stream_name)
        await super().execute(aggregate, message)


async def test_consumer_group_members_split_the_commands(runtime: Runtime) -> None:
    ids = [unique("g") for _ in range(12)]
    submitted = [
        await runtime.submit("Todos", entity_id, "add_todo", {"id": "1", "description": "x"})
        for entity_id in ids
    ]
    first = await runtime.store.get_last_stream_message(submitted[0].stream_name)
    assert first is not None
    name = unique("group")
    members = [
        _Recording(runtime, ["Todos"], name=name, group_member=m, group_size=2) for m in range(2)
    ]
    for member in members:
        while await member.poll():  # until caught up
            pass
    # Older commands of the shared database may precede ours: count ours only.
    mine = {f"todos:command-{i}" for i in ids}
    handled = [member.seen & mine for member in members]
    assert handled[0].isdisjoint(handled[1])
    assert handled[0] | handled[1] == mine
    assert all(handled), f"both members should get work: {[len(h) for h in handled]}"
    for entity_id in ids:
        assert await runtime.store.stream_version(f"todos-{entity_id}") == 0, "executed once"
    assert all(m.consumers["Todos"].position > first.global_position for m in members)


async def test_consumer_records_and_resumes_its_position(rt_store: MessageStore) -> None:
    category = unique("things")
    for i in range(5):
        from thalo.core import NewMessage

        await rt_store.write_message(f"{category}-{i}", NewMessage("Thing", {"i": i}))
    seen: list[int] = []

    async def handle(message: Message) -> None:
        seen.append(message.data["i"])

    first = Consumer(rt_store, category, handle, name="reader", position_update_interval=2)
    assert await first.poll() == 5
    await first.record_position()
    await rt_store.write_message(f"{category}-9", NewMessage("Thing", {"i": 9}))
    second = Consumer(rt_store, category, handle, name="reader")
    assert await second.poll() == 1
    assert seen == [0, 1, 2, 3, 4, 9]
    positions = await rt_store.get_stream_messages(f"{category}:position-reader")
    assert [m.type for m in positions] and positions[-1].type == "Recorded"
