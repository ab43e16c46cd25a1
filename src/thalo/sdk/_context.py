"""The context of one command: where it came from and when, as the runtime saw it."""

from __future__ import annotations

__all__ = ["Context"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from thalo.sdk._errors import Ignore


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Message id, stream name, positions, metadata and time of the command being handled.

    ``position`` and ``global_position`` are those of the command message when it was
    read from a command stream, ``None`` when the command came straight from a client.
    """

    stream_name: str
    message_id: str | None = None
    position: int | None = None
    global_position: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    time: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Context:
        """Reads the ctx JSON object of the WIT contract (camelCase keys, ISO 8601 time)."""
        time_text = data.get("time")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise ValueError("ctx.metadata must be an object or null")
        return cls(
            stream_name=_require_str(data, "streamName"),
            message_id=_optional(data, "messageId", str),
            position=_optional(data, "position", int),
            global_position=_optional(data, "globalPosition", int),
            metadata=dict(metadata),
            time=datetime.fromisoformat(time_text) if isinstance(time_text, str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The ctx JSON object of the WIT contract."""
        return {
            "messageId": self.message_id,
            "streamName": self.stream_name,
            "position": self.position,
            "globalPosition": self.global_position,
            "metadata": dict(self.metadata),
            "time": self.time.isoformat() if self.time is not None else None,
        }

    def processed(self, sequence: int | None) -> bool:
        """True when this command was already handled.

        ``sequence`` is the position of the last command the entity recorded (kept in
        its state by an ``apply_*`` method). A command at or before it is a redelivery.
        Without a position (a direct command) nothing can be known: ``False``.
        """
        return sequence is not None and self.position is not None and self.position <= sequence

    def ignore_if_processed(self, sequence: int | None, reason: str | None = None) -> None:
        """Raises :class:`Ignore` when :meth:`processed` says the command was already handled."""
        if self.processed(sequence):
            raise Ignore(reason or f"command at position {self.position} already processed")


def _require_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"ctx.{key} must be a string")
    return value


def _optional(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"ctx.{key} must be {kind.__name__} or null")
    return value
