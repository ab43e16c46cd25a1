"""An entity's state as its guest snapshots it: what ``thalo state`` and the HTTP API show."""

from __future__ import annotations

__all__ = ["EntityState"]

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EntityState:
    """An entity's state as its guest snapshots it, at stream ``version``."""

    aggregate: str
    entity_id: str
    version: int
    module_version: str
    state: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` and the HTTP API."""
        return {
            "aggregate": self.aggregate,
            "id": self.entity_id,
            "version": self.version,
            "module_version": self.module_version,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityState:
        """The inverse of ``to_dict`` (the HTTP client reads states this way)."""
        return cls(
            str(data["aggregate"]),
            str(data["id"]),
            int(data["version"]),
            str(data["module_version"]),
            data["state"],
        )
