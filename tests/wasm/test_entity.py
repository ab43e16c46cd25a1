"""Entities in a real component: handle, apply, execute, snapshot, restore, every error case."""

from __future__ import annotations

import json

import pytest

from thalo.wasm import (
    GuestDecodeFailed,
    GuestIgnored,
    GuestRejected,
    GuestUnknownCommand,
    GuestUnknownEvent,
    WasmModule,
    load_module,
)

pytestmark = pytest.mark.wasm

CTX = {"streamName": "tally:command-c-1", "position": 7, "metadata": {"k": "v"}}


def test_schema_is_the_canonical_esdl(counter: WasmModule) -> None:
    assert counter.name == "Counter"
    assert counter.schema.startswith('version = "0.1.0"\n\naggregate Counter {')


def test_handle_apply_snapshot_restore(counter: WasmModule) -> None:
    entity = counter.entity("c-1")
    events = entity.handle(CTX, "increment", {"amount": 2})
    assert events == [("Incremented", {"amount": 2, "count": 2, "sequence": 7})]
    entity.apply(events)
    entity.apply('[{"type": "Incremented", "data": {"amount": 3, "count": 5}}]')
    entity.apply([{"type": "Reset", "data": {"sequence": 9}}])
    assert json.loads(entity.snapshot()) == {"count": 0, "sequence": 9}
    entity.apply([("Incremented", {"amount": 4, "count": 4})])
    copy = counter.restore("c-1", entity.snapshot())
    assert json.loads(copy.snapshot()) == {"count": 4, "sequence": 9}
    assert copy.handle(CTX | {"position": 10}, "reset") == [("Reset", {"sequence": 10})]


def test_raw_json_handle(counter: WasmModule) -> None:
    entity = counter.entity("c-1")
    out = entity.handle_json(json.dumps(CTX), '{"name": "increment", "payload": {"amount": 1}}')
    assert json.loads(out) == [
        {"type": "Incremented", "data": {"amount": 1, "count": 1, "sequence": 7}}
    ]


# (ctx, command, payload): increments with and without a position, a reset, a no-op reset.
SEQUENCE = [
    (CTX, "increment", {"amount": 2}),
    (CTX | {"position": 8}, "increment", {"amount": 3}),
    ({"streamName": "s"}, "increment", {"amount": 1}),
    (CTX | {"position": 9}, "reset", None),
    (CTX | {"position": 10}, "reset", None),
    (CTX | {"position": 11}, "increment", {"amount": 4}),
]


def test_execute_is_handle_then_apply(counter: WasmModule) -> None:
    twin, entity = counter.entity("c-1"), counter.entity("c-1")
    history = []
    for ctx, name, payload in SEQUENCE:
        expected = twin.handle(ctx, name, payload)
        twin.apply(expected)
        assert entity.execute(ctx, name, payload) == expected
        assert entity.snapshot() == twin.snapshot()
        history.append(expected)
    assert [len(events) for events in history] == [1, 1, 1, 1, 0, 1]
    assert json.loads(entity.snapshot()) == {"count": 4, "sequence": 11}
    replayed = counter.entity("c-1")
    replayed.apply([event for events in history for event in events])
    assert replayed.snapshot() == entity.snapshot()


def test_raw_json_execute_returns_the_text_handle_returns(counter: WasmModule) -> None:
    twin, entity = counter.entity("c-1"), counter.entity("c-1")
    ctx, command = json.dumps(CTX), '{"name": "increment", "payload": {"amount": 5}}'
    text = twin.handle_json(ctx, command)
    assert entity.execute_json(ctx, command) == text
    assert json.loads(twin.snapshot())["count"] == 0
    assert json.loads(entity.snapshot())["count"] == 5


@pytest.mark.parametrize(
    ("ctx", "name", "payload", "error"),
    [
        (CTX | {"position": 8}, "increment", {"amount": -1}, GuestRejected),
        (CTX, "increment", {"amount": 1}, GuestIgnored),  # position 7 is already applied
        (CTX, "reset", None, GuestIgnored),
        (CTX, "decrement", {}, GuestUnknownCommand),
        (CTX | {"position": 8}, "increment", {}, GuestDecodeFailed),
        ("not json", "increment", {"amount": 1}, GuestDecodeFailed),
    ],
)
def test_an_answer_from_execute_leaves_the_state_as_it_was(
    counter: WasmModule,
    ctx: object,
    name: str,
    payload: dict[str, object] | None,
    error: type[Exception],
) -> None:
    entity = counter.entity("c-1")
    assert entity.execute(CTX, "increment", {"amount": 2}) != []
    before = entity.snapshot()
    with pytest.raises(error):
        entity.execute(ctx, name, payload)  # type: ignore[arg-type]
    assert entity.snapshot() == before
    assert entity.alive
    assert entity.execute(CTX | {"position": 8}, "increment", {"amount": 1}) == [
        ("Incremented", {"amount": 1, "count": 3, "sequence": 8})
    ]


def test_execute_returns_the_lies_handle_returns(guests: dict[str, object]) -> None:
    liar = load_module(guests["liar"].wasm)  # type: ignore[attr-defined]
    ctx = {"streamName": "liar-x"}
    lie = [("Said", {"count": "1 (text, not an Int)"})]
    assert liar.entity("x").handle(ctx, "lie", {"count": 1}) == lie
    assert liar.entity("x").execute(ctx, "lie", {"count": 1}) == lie
    # `tell` reports how many events the entity has applied: execute applies its own.
    teller = liar.entity("y")
    assert teller.execute(ctx, "tell", {"count": 2}) == [("Said", {"count": 0})]
    assert teller.execute(ctx, "tell", {"count": 2}) == [("Said", {"count": 1})]


def test_rejected(counter: WasmModule) -> None:
    with pytest.raises(GuestRejected) as caught:
        counter.entity("c-1").handle(CTX, "increment", {"amount": -1})
    assert caught.value.reason == "amount must be positive, got -1"
    assert caught.value.exit_code == 1


def test_ignored_after_the_command_position_was_applied(counter: WasmModule) -> None:
    entity = counter.entity("c-1")
    entity.apply(entity.handle(CTX, "increment", {"amount": 1}))
    with pytest.raises(GuestIgnored) as caught:
        entity.handle(CTX, "increment", {"amount": 1})
    assert caught.value.reason == "command at position 7 already processed"


def test_unknown_command(counter: WasmModule) -> None:
    with pytest.raises(GuestUnknownCommand) as caught:
        counter.entity("c-1").handle(CTX, "decrement", {})
    assert caught.value.detail == "decrement"


def test_unknown_event_leaves_state_untouched(counter: WasmModule) -> None:
    entity = counter.entity("c-1")
    with pytest.raises(GuestUnknownEvent, match="Decremented"):
        entity.apply([("Incremented", {"amount": 1, "count": 1}), ("Decremented", {})])
    assert json.loads(entity.snapshot()) == {"count": 0, "sequence": None}


@pytest.mark.parametrize(
    ("ctx", "payload", "message"),
    [
        (CTX, {}, "KeyError: 'amount'"),
        ({"position": 1}, {"amount": 1}, "ctx.streamName must be a string"),
        ("not json", {"amount": 1}, "ctx is not valid JSON"),
    ],
)
def test_decode_failures(
    counter: WasmModule, ctx: object, payload: dict[str, object], message: str
) -> None:
    entity = counter.entity("c-1")
    with pytest.raises(GuestDecodeFailed, match=message):
        entity.handle(ctx, "increment", payload)  # type: ignore[arg-type]


def test_apply_and_restore_decode_failures(counter: WasmModule) -> None:
    entity = counter.entity("c-1")
    with pytest.raises(GuestDecodeFailed, match="KeyError: 'count'"):
        entity.apply([("Incremented", {"amount": 1})])
    with pytest.raises(GuestDecodeFailed, match="events is not valid JSON"):
        entity.apply("[")
    with pytest.raises(GuestDecodeFailed, match="snapshot must be a JSON object"):
        counter.restore("c-2", "[]")
    assert entity.alive  # answers are not failures: the instance lives on


def test_entities_share_one_instance_and_keep_their_own_state(counter: WasmModule) -> None:
    entities = [counter.entity(f"c-{i}") for i in range(20)]
    for i, entity in enumerate(entities):
        entity.apply([("Incremented", {"amount": i, "count": i})])
    assert counter.instances == 1
    assert [json.loads(e.snapshot())["count"] for e in entities] == list(range(20))


def test_close_is_idempotent_and_loses_the_entity(counter: WasmModule) -> None:
    from thalo.wasm import EntityLost

    entity = counter.entity("c-1")
    entity.close()
    entity.close()
    assert not entity.alive
    with pytest.raises(EntityLost, match="handle was closed"):
        entity.snapshot()
    counter.close()
    with pytest.raises(Exception, match="closed"):
        counter.entity("c-2")
