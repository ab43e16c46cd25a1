"""Messages: what the store records (``Message``) and what callers write (``NewMessage``)."""

from __future__ import annotations

__all__ = ["Message", "NewMessage", "RawMessage", "new_message_id"]

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


def new_message_id() -> str:
    """A fresh random UUID as text, Message DB's id format."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to write: the store assigns stream position, global position and time."""

    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None
    id: str = field(default_factory=new_message_id)


@dataclass(frozen=True, slots=True)
class Message:
    """A recorded message, with the fields Message DB records."""

    id: str
    stream_name: str
    type: str
    position: int
    global_position: int
    data: dict[str, Any]
    metadata: dict[str, Any] | None
    time: datetime

    def meta(self, key: str, default: Any = None) -> Any:
        """One metadata value, or ``default`` when absent or there is no metadata."""
        return default if self.metadata is None else self.metadata.get(key, default)

    @property
    def correlation_stream_name(self) -> str | None:
        value = self.meta("correlationStreamName")
        return value if isinstance(value, str) else None

    @property
    def causation_message_stream_name(self) -> str | None:
        value = self.meta("causationMessageStreamName")
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (time as ISO 8601), for ``--json`` output and the HTTP API."""
        return {
            "id": self.id,
            "stream_name": self.stream_name,
            "type": self.type,
            "position": self.position,
            "global_position": self.global_position,
            "data": self.data,
            "metadata": self.metadata,
            "time": self.time.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """The inverse of ``to_dict`` (the HTTP client reads messages this way)."""
        metadata = data.get("metadata")
        return cls(
            str(data["id"]),
            str(data["stream_name"]),
            str(data["type"]),
            int(data["position"]),
            int(data["global_position"]),
            dict(data["data"]),
            None if metadata is None else dict(metadata),
            datetime.fromisoformat(str(data["time"])),
        )


class RawMessage(NamedTuple):
    """A recorded message of a known stream with data and metadata still JSON text.

    What a replay needs and no more: the runtime hands the data to the guest as
    text, so decoding it into dicts first would be wasted work.
    """

    position: int
    type: str
    data: str
    metadata: str | None
    time: datetime
