"""Unit tests of Todos, natively (no wasm)."""

from __future__ import annotations

from todos import Todos
from todos_schema import AddedTodo, CompletedTodo, RemovedTodo

from thalo.sdk.testing import AggregateTest


def test_add_complete_remove() -> None:
    test = AggregateTest(Todos)
    test.when("add_todo", {"id": "t1", "description": "write docs"}).then(
        AddedTodo(id="t1", description="write docs")
    )
    test.when("complete_todo", {"id": "t1"}).then(CompletedTodo(id="t1"))
    assert test.state.items == {"t1": {"description": "write docs", "completed": True}}
    test.when("remove_todo", {"id": "t1"}).then(RemovedTodo(id="t1"))
    assert test.state.items == {}


def test_duplicates_are_refused() -> None:
    test = AggregateTest(Todos).given(AddedTodo(id="t1", description="a"))
    test.when("add_todo", {"id": "t1", "description": "b"}).then_rejected("already exists")


def test_unknown_ids_are_refused() -> None:
    AggregateTest(Todos).when("complete_todo", {"id": "x"}).then_rejected("no todo")
    AggregateTest(Todos).when("remove_todo", {"id": "x"}).then_rejected("no todo")


def test_completing_twice_is_refused() -> None:
    test = AggregateTest(Todos).given(AddedTodo(id="t1", description="a"), CompletedTodo(id="t1"))
    test.when("complete_todo", {"id": "t1"}).then_rejected("already completed")


def test_blank_descriptions_are_refused() -> None:
    AggregateTest(Todos).when("add_todo", {"id": "t", "description": "  "}).then_rejected("blank")


def test_snapshot_round_trip() -> None:
    restored = (
        AggregateTest(Todos)
        .given(AddedTodo(id="a", description="x"), CompletedTodo(id="a"))
        .restored()
    )
    assert restored.items == {"a": {"description": "x", "completed": True}}
