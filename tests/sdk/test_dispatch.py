"""EntityCore: JSON in, calls on the aggregate, JSON out — the path every guest call takes."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from chaos import Chaos
from tally import Counter, Incremented

from thalo.sdk import Context, Ignore, Rejected
from thalo.sdk._dispatch import EntityCore
from thalo.sdk._errors import DispatchError

CTX = json.dumps({"streamName": "tally:command-c-1", "position": 4})


def command(name: str, **payload: object) -> str:
    return json.dumps({"name": name, "payload": payload})


def test_handle_returns_encoded_events_and_does_not_apply_them() -> None:
    core = EntityCore.create(Counter, "c-1")
    events = json.loads(core.handle(CTX, command("increment", amount=3)))
    assert events == [{"type": "Incremented", "data": {"amount": 3, "count": 3, "sequence": 4}}]
    assert core.aggregate.count == 0  # type: ignore[attr-defined]


def test_execute_returns_what_handle_returns_and_applies_it() -> None:
    twin, core = EntityCore.create(Counter, "c-1"), EntityCore.create(Counter, "c-1")
    steps = [
        (CTX, command("increment", amount=3)),
        (json.dumps({"streamName": "s"}), command("increment", amount=2)),
        (json.dumps({"streamName": "s", "position": 5}), command("reset")),
        (json.dumps({"streamName": "s", "position": 6}), command("reset")),
    ]
    for ctx, request in steps:
        text = twin.handle(ctx, request)
        twin.apply(text)
        assert core.execute(ctx, request) == text
        assert core.snapshot() == twin.snapshot()
    assert json.loads(core.snapshot()) == {"count": 0, "sequence": 5}


@pytest.mark.parametrize(
    ("position", "request_text", "error"),
    [
        (5, command("increment", amount=0), Rejected),
        (4, command("increment", amount=1), Ignore),  # position 4 is already applied
        (5, command("decrement"), DispatchError),
        (5, command("increment"), DispatchError),
    ],
)
def test_execute_refused_leaves_the_state_untouched(
    position: int, request_text: str, error: type[Exception]
) -> None:
    core = EntityCore.create(Counter, "c-1")
    core.execute(CTX, command("increment", amount=2))
    before = core.snapshot()
    with pytest.raises(error):
        core.execute(json.dumps({"streamName": "s", "position": position}), request_text)
    assert core.snapshot() == before == '{"count":2,"sequence":4}'


class _Fussy(Incremented):
    """Incremented whose decoder refuses a negative count (a guest that cannot read its own)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incremented:
        if data["count"] < 0:
            raise ValueError("negative count")
        return super().from_json(data)


class _Overdrawn(Counter):
    __thalo_events__: ClassVar[dict[str, type[Any]]] = {
        **Counter.__thalo_events__,
        "Incremented": _Fussy,
    }

    def handle_increment(self, ctx: Context, amount: int) -> list[Incremented]:  # type: ignore[override]
        return [Incremented(amount=amount, count=amount), Incremented(amount=-9, count=-9)]


def test_execute_decodes_every_event_with_the_replay_decoder_before_applying() -> None:
    core = EntityCore.create(_Overdrawn, "c-1")
    with pytest.raises(DispatchError) as caught:
        core.execute(CTX, command("increment", amount=1))
    assert caught.value.kind == "decode"
    assert "events[1] (Incremented): ValueError: negative count" in caught.value.detail
    assert core.aggregate.count == 0  # type: ignore[attr-defined]


def test_apply_batch_then_snapshot_and_restore() -> None:
    core = EntityCore.create(Counter, "c-1")
    core.apply(
        json.dumps(
            [
                {"type": "Incremented", "data": {"amount": 1, "count": 1, "sequence": 0}},
                {"type": "Incremented", "data": {"amount": 2, "count": 3}},
            ]
        )
    )
    assert json.loads(core.snapshot()) == {"count": 3, "sequence": 0}
    restored = EntityCore.restore(Counter, "c-1", core.snapshot())
    assert restored.aggregate.id == "c-1"
    assert restored.aggregate.count == 3  # type: ignore[attr-defined]


def test_handler_returning_none_gives_no_events() -> None:
    core = EntityCore.create(Counter, "c-1")
    assert core.handle(CTX, command("reset")) == "[]"


def test_rejected_and_ignore_propagate_for_the_glue() -> None:
    core = EntityCore.create(Counter, "c-1")
    with pytest.raises(Rejected, match="amount must be positive"):
        core.handle(CTX, command("increment", amount=0))
    core.apply(
        json.dumps([{"type": "Incremented", "data": {"amount": 1, "count": 1, "sequence": 4}}])
    )
    with pytest.raises(Ignore, match="already processed"):
        core.handle(CTX, command("increment", amount=1))


@pytest.mark.parametrize(
    ("ctx", "request_text", "kind", "detail"),
    [
        (CTX, command("decrement"), "unknown-command", "decrement"),
        (CTX, command("increment"), "decode", "KeyError: 'amount'"),
        (CTX, "{nope", "decode", "command is not valid JSON"),
        (CTX, json.dumps({"payload": {}}), "decode", "command must be an object"),
        (CTX, json.dumps({"name": "increment", "payload": [1]}), "decode", "must be a JSON object"),
        ("[]", command("increment", amount=1), "decode", "ctx must be a JSON object"),
        ("{}", command("increment", amount=1), "decode", "ctx.streamName must be a string"),
        (
            json.dumps({"streamName": "s", "position": "3"}),
            command("increment", amount=1),
            "decode",
            "ctx.position must be int",
        ),
    ],
)
def test_handle_dispatch_errors(ctx: str, request_text: str, kind: str, detail: str) -> None:
    core = EntityCore.create(Counter, "c-1")
    with pytest.raises(DispatchError) as caught:
        core.handle(ctx, request_text)
    assert caught.value.kind == kind
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    ("events", "kind", "detail"),
    [
        ('{"type": "Incremented"}', "decode", "events must be a JSON array"),
        ("[1]", "decode", "events[0] must be an object with a type"),
        ('[{"type": "Decremented", "data": {}}]', "unknown-event", "Decremented"),
        ('[{"type": "Incremented", "data": []}]', "decode", "events[0].data must be an object"),
        ('[{"type": "Incremented", "data": {"amount": 1}}]', "decode", "KeyError: 'count'"),
        ("not json", "decode", "events is not valid JSON"),
    ],
)
def test_apply_errors(events: str, kind: str, detail: str) -> None:
    core = EntityCore.create(Counter, "c-1")
    with pytest.raises(DispatchError) as caught:
        core.apply(events)
    assert (caught.value.kind, caught.value.detail.count(detail) > 0) == (kind, True)


def test_a_bad_event_in_a_batch_leaves_the_state_untouched() -> None:
    core = EntityCore.create(Counter, "c-1")
    batch = [
        {"type": "Incremented", "data": {"amount": 5, "count": 5}},
        {"type": "Nope", "data": {}},
    ]
    with pytest.raises(DispatchError, match="unknown-event"):
        core.apply(json.dumps(batch))
    assert core.aggregate.count == 0  # type: ignore[attr-defined]


def test_an_undeclared_event_is_a_bug_not_a_domain_error() -> None:
    core = EntityCore.create(Chaos, "x")
    with pytest.raises(
        TypeError, match="Other event, but the schema says wrong_event emits only Done"
    ):
        core.handle(CTX, command("wrong_event"))


def test_unexpected_exceptions_propagate() -> None:
    core = EntityCore.create(Chaos, "x")
    with pytest.raises(RuntimeError, match="boom"):
        core.handle(CTX, command("crash", message="boom"))


def test_restore_errors() -> None:
    with pytest.raises(DispatchError, match="snapshot must be a JSON object"):
        EntityCore.restore(Counter, "c-1", "[1]")
    with pytest.raises(DispatchError, match="snapshot is not valid JSON"):
        EntityCore.restore(Counter, "c-1", "{")


class _Upcasting(Counter):
    """Counts in tens since schema version 2 of Incremented: old events are upcast."""

    seen: ClassVar[list[tuple[str, int]]] = []

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        self.seen.append((event_type, version))
        return {**data, "amount": data["amount"] * 10, "count": data["count"] * 10}


def test_apply_upcasts_only_events_that_carry_an_older_schema_version() -> None:
    core = EntityCore.create(_Upcasting, "c-1")
    core.apply(
        json.dumps(
            [
                {"type": "Incremented", "data": {"amount": 1, "count": 1}, "schemaVersion": 1},
                {"type": "Incremented", "data": {"amount": 5, "count": 15}},
            ]
        )
    )
    assert core.aggregate.count == 15  # type: ignore[attr-defined]
    assert _Upcasting.seen == [("Incremented", 1)]
    # An upcast that leaves the data undecodable names the stored version.
    with pytest.raises(DispatchError) as caught:
        EntityCore.create(Counter, "c-2").apply(
            json.dumps([{"type": "Incremented", "data": {"amount": 1}, "schemaVersion": 1}])
        )
    assert caught.value.kind == "decode"
    assert "events[0] (Incremented) (stored at schema version 1, upcast): KeyError" in (
        caught.value.detail
    )


class _Versioned(Counter):
    """Incremented at schema version 2: ``sequence`` defaults to 0, counts are in tens."""

    __thalo_schema__ = Counter.__thalo_schema__.replace(
        "event Incremented {", "event Incremented version 2 {"
    ).replace("  sequence: Long?\n}\n\nevent Reset", "  sequence: Long? = 0\n}\n\nevent Reset")

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "amount": data["amount"] * 10, "count": data["count"] * 10}


def test_given_stored_upcasts_as_a_replay_does() -> None:
    from thalo.sdk.testing import AggregateTest

    assert "event Incremented version 2 {" in _Versioned.__thalo_schema__
    test = AggregateTest(_Versioned).given_stored("Incremented", {"amount": 1, "count": 1})
    assert (test.state.count, test.state.sequence) == (10, 0)  # type: ignore[attr-defined]
    current = {"amount": 2, "count": 12, "sequence": 5}
    test.given_stored("Incremented", current, schema_version=2)  # current: untouched
    assert (test.state.count, test.state.sequence) == (12, 5)  # type: ignore[attr-defined]
