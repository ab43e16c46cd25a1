"""The Todos aggregate: add, complete and remove items; ids are unique within a list."""

from __future__ import annotations

from todos_schema import AddedTodo, CompletedTodo, RemovedTodo, TodosBase

from thalo.sdk import Context, Rejected


class Todos(TodosBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        # id -> {"description": str, "completed": bool}: plain JSON, so the default
        # snapshot stores and restores it as is.
        self.items: dict[str, dict[str, object]] = {}

    def _existing(self, id: str) -> dict[str, object]:
        item = self.items.get(id)
        if item is None:
            raise Rejected(f"no todo with id {id!r}")
        return item

    def handle_add_todo(self, ctx: Context, id: str, description: str) -> AddedTodo:
        if id in self.items:
            raise Rejected(f"a todo with id {id!r} already exists")
        if not description.strip():
            raise Rejected("the description must not be blank")
        return AddedTodo(id=id, description=description)

    def handle_complete_todo(self, ctx: Context, id: str) -> CompletedTodo:
        if self._existing(id)["completed"]:
            raise Rejected(f"todo {id!r} is already completed")
        return CompletedTodo(id=id)

    def handle_remove_todo(self, ctx: Context, id: str) -> RemovedTodo:
        self._existing(id)
        return RemovedTodo(id=id)

    def apply_added_todo(self, event: AddedTodo) -> None:
        self.items[event.id] = {"description": event.description, "completed": False}

    def apply_completed_todo(self, event: CompletedTodo) -> None:
        self.items[event.id]["completed"] = True

    def apply_removed_todo(self, event: RemovedTodo) -> None:
        del self.items[event.id]
