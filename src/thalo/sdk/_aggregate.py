"""The base class every aggregate derives from (through its generated ``{Name}Base``)."""

from __future__ import annotations

__all__ = ["Aggregate", "CommandSpec"]

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

_A = TypeVar("_A", bound="Aggregate")

# JSON values a default snapshot can hold and give back unchanged.
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command of the schema: its name, its payload decoder and the events it may emit.

    ``decode`` turns the JSON payload into the keyword arguments of ``handle_<name>``.
    """

    name: str
    decode: Callable[[dict[str, Any]], dict[str, Any]]
    events: tuple[str, ...]


class Aggregate(abc.ABC):
    """State of one entity plus its ``handle_<command>`` and ``apply_<event>`` methods.

    The generated base class fills the ``__thalo_*__`` class attributes. Override
    :meth:`to_snapshot` and :meth:`from_snapshot` when the state holds more than
    plain JSON values.
    """

    __thalo_aggregate__: ClassVar[str]
    __thalo_version__: ClassVar[str]
    __thalo_schema__: ClassVar[str]
    __thalo_commands__: ClassVar[dict[str, CommandSpec]]
    __thalo_events__: ClassVar[dict[str, type[Any]]]

    def __init__(self, id: str) -> None:
        self.id = id

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        """Brings the data of an event stored at schema ``version`` (older than its type's
        version in the ESDL) up to date before it is decoded and applied. Default: as is.

        The host has already filled the fields that have an ESDL default; override
        this for what defaults cannot do (retype, rename, compute). Called only for
        old events, never for events at their type's current version.
        """
        return data

    def to_snapshot(self) -> dict[str, Any]:
        """The state as a JSON object. Default: every public attribute except ``id``.

        Raises ``TypeError`` for a value that would not come back unchanged from JSON
        (a dataclass, a tuple, bytes, a set): override this and :meth:`from_snapshot`.
        """
        state: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key == "id" or key.startswith("_"):
                continue
            _check_json(value, key)
            state[key] = value
        return state

    @classmethod
    def from_snapshot(cls: type[_A], id: str, state: dict[str, Any]) -> _A:
        """Rebuilds an entity from :meth:`to_snapshot`'s output. Default: set each attribute."""
        entity = cls(id)
        for key, value in state.items():
            setattr(entity, key, value)
        return entity


def _check_json(value: Any, path: str) -> None:
    if isinstance(value, _JSON_SCALARS):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"snapshot field {path} has a non-string key {key!r}")
            _check_json(item, f"{path}.{key}")
        return
    raise TypeError(
        f"snapshot field {path} holds a {type(value).__name__}, which JSON cannot restore "
        "as is: override to_snapshot/from_snapshot"
    )
