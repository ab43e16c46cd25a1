"""The context of one command: where it came from and when, as the runtime saw it."""

from __future__ import annotations

__all__ = ["Context"]

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from thalo.sdk._errors import Ignore


class Context:
    """Message id, stream name, positions, metadata and time of the command being handled.

    ``position`` and ``global_position`` are those of the command message when it was
    read from a command stream, ``None`` when the command came straight from a client.
    Treat it as read-only. (A plain slotted class, not a frozen dataclass: building it
    is on every command's path, and inside wasm a frozen dataclass costs ~10 µs more.)
    """

    __slots__ = ("global_position", "message_id", "metadata", "position", "stream_name", "time")

    def __init__(
        self,
        *,
        stream_name: str,
        message_id: str | None = None,
        position: int | None = None,
        global_position: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> None:
        self.stream_name = stream_name
        self.message_id = message_id
        self.position = position
        self.global_position = global_position
        self.metadata: Mapping[str, Any] = metadata if metadata is not None else {}
        self.time = time

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Context):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Context({fields})"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Context:
        """Reads the ctx JSON object of the WIT contract (camelCase keys, ISO 8601 time).

        Raises ``ValueError`` naming the first field of the wrong type.
        """
        get = data.get
        stream_name = get("streamName")
        if type(stream_name) is not str:
            raise ValueError("ctx.streamName must be a string")
        message_id = get("messageId")
        if message_id is not None and type(message_id) is not str:
            raise ValueError("ctx.messageId must be str or null")
        position = get("position")
        if position is not None and type(position) is not int:
            raise ValueError("ctx.position must be int or null")
        global_position = get("globalPosition")
        if global_position is not None and type(global_position) is not int:
            raise ValueError("ctx.globalPosition must be int or null")
        metadata = get("metadata")
        if metadata is None:
            metadata = {}
        elif type(metadata) is not dict:
            raise ValueError("ctx.metadata must be an object or null")
        time_text = get("time")
        if time_text is None:
            time = None
        elif type(time_text) is str:
            time = datetime.fromisoformat(time_text)
        else:
            raise ValueError("ctx.time must be an ISO 8601 string or null")
        return cls(
            stream_name=stream_name,
            message_id=message_id,
            position=position,
            global_position=global_position,
            metadata=metadata,
            time=time,
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
