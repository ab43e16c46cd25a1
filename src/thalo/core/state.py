"""An entity's state as its guest snapshots it: what ``thalo state`` and the HTTP API show."""

from __future__ import annotations

__all__ = ["EntityState", "WrittenBy"]

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class WrittenBy:
    """Stream positions ``first`` to ``last`` were written by ``module_version`` (their
    ``thaloModuleVersion`` metadata; ``None`` for events that do not say)."""

    module_version: str | None
    first: int
    last: int

    def to_dict(self) -> dict[str, Any]:
        return {"module_version": self.module_version, "from": self.first, "to": self.last}


@dataclass(frozen=True, slots=True)
class EntityState:
    """An entity's state as its guest snapshots it, at stream ``version``.

    ``module_version`` replayed it, chosen by ``module_chosen_by``: ``"newest"`` (the
    newest published version), ``"history"`` (the version that wrote the last event
    replayed, for a state in the past) or ``"request"`` (asked for by the caller).
    ``written_by`` says which versions wrote the events replayed (time travel only).
    """

    aggregate: str
    entity_id: str
    version: int
    module_version: str
    state: Any
    module_chosen_by: str = "newest"
    written_by: tuple[WrittenBy, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` and the HTTP API."""
        data = {
            "aggregate": self.aggregate,
            "id": self.entity_id,
            "version": self.version,
            "module_version": self.module_version,
            "module_chosen_by": self.module_chosen_by,
            "state": self.state,
        }
        if self.written_by:
            data["written_by"] = [w.to_dict() for w in self.written_by]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityState:
        """The inverse of ``to_dict`` (the HTTP client reads states this way)."""
        return cls(
            str(data["aggregate"]),
            str(data["id"]),
            int(data["version"]),
            str(data["module_version"]),
            data["state"],
            str(data.get("module_chosen_by", "newest")),
            tuple(
                WrittenBy(w.get("module_version"), int(w["from"]), int(w["to"]))
                for w in data.get("written_by") or ()
            ),
        )
