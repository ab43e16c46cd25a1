"""Messages to and from the database: validation, strict JSON, and rows back to ``Message``.

Both backends encode through here, so bad input is refused with the same error
and text everywhere, before anything reaches a database.
"""

from __future__ import annotations

__all__ = [
    "EncodedMessage",
    "decode_json",
    "encode_messages",
    "messages_from_rows",
    "raw_messages_from_rows",
]

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from thalo.core import Message, NewMessage, RawMessage, validate_stream_name
from thalo.errors import InvalidMessage

# Strict JSON: datetimes and dataclasses are not silently turned into strings
# or objects; they reach _reject and become InvalidMessage.
_DUMP_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


# What str(uuid.UUID(x)) produces; ids already in this form skip the parse.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class EncodedMessage(NamedTuple):
    """A validated message ready for a database: canonical UUID text and JSON text.

    A NamedTuple rather than a frozen dataclass: it is built once per message
    written, on the hot path, and a tuple is about three times cheaper to make.
    """

    id: str
    type: str
    data: str
    metadata: str | None
    metadata_value: dict[str, Any] | None


def _reject(value: object) -> None:
    raise TypeError(f"{type(value).__name__} is not a JSON type")


def _dumps(value: object, what: str, message_type: str) -> str:
    try:
        text = orjson.dumps(value, option=_DUMP_OPTIONS, default=_reject)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidMessage(
            f"the {what} of message {message_type!r} is not JSON-serializable: {exc}"
        ) from exc
    if b"\\u0000" in text:
        raise InvalidMessage(
            f"the {what} of message {message_type!r} contains a NUL character (\\u0000), "
            "which PostgreSQL cannot store"
        )
    return text.decode()


def _encode(message: object) -> EncodedMessage:
    if not isinstance(message, NewMessage):
        raise InvalidMessage(
            f"expected a thalo.core.NewMessage to write, got {type(message).__name__}"
        )
    if not isinstance(message.type, str) or not message.type:
        raise InvalidMessage(f"a message type must be a non-empty string, got {message.type!r}")
    canonical_id = message.id
    try:
        if not isinstance(canonical_id, str) or not _CANONICAL_UUID.fullmatch(canonical_id):
            canonical_id = str(uuid.UUID(message.id))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidMessage(
            f"the id of message {message.type!r} must be a UUID, got {message.id!r}"
        ) from exc
    if not isinstance(message.data, dict):
        raise InvalidMessage(
            f"the data of message {message.type!r} must be a JSON object (a dict), "
            f"got {type(message.data).__name__}"
        )
    if message.metadata is not None and not isinstance(message.metadata, dict):
        raise InvalidMessage(
            f"the metadata of message {message.type!r} must be a JSON object (a dict) or None, "
            f"got {type(message.metadata).__name__}"
        )
    data = _dumps(message.data, "data", message.type)
    metadata = (
        None if message.metadata is None else _dumps(message.metadata, "metadata", message.type)
    )
    return EncodedMessage(canonical_id, message.type, data, metadata, message.metadata)


def encode_messages(stream_name: object, messages: Sequence[object]) -> list[EncodedMessage]:
    """Validate the stream name and every message; raise before anything is written."""
    validate_stream_name(stream_name)
    # A list or tuple (the usual case) skips the slower abstract-class check.
    if (
        type(messages) is not list
        and type(messages) is not tuple
        and (isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence))
    ):
        raise InvalidMessage(
            f"expected a sequence of NewMessage to write, got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessage(f"nothing to write to {stream_name!r}: the list of messages is empty")
    encoded = [_encode(message) for message in messages]
    if len(encoded) > 1 and len({m.id for m in encoded}) != len(encoded):
        raise InvalidMessage(
            f"the messages to write to {stream_name!r} repeat a message id; ids must be unique"
        )
    return encoded


def decode_json(text: str | bytes | None) -> Any:
    """JSON text from the database to Python; SQL NULL stays None."""
    return None if text is None else orjson.loads(text)


def _utc(time: Any) -> datetime:
    """A row's time as an aware UTC datetime: PostgreSQL gives naive UTC, SQLite ISO text."""
    naive = time if isinstance(time, datetime) else datetime.fromisoformat(time)
    return naive.replace(tzinfo=UTC)


def messages_from_rows(rows: Iterable[Sequence[Any]]) -> list[Message]:
    """Rows ``(id, stream_name, type, position, global_position, data, metadata, time)``.

    Messages written together share their time, so a repeated time is converted once.
    """
    messages: list[Message] = []
    last_time: object = None
    moment = datetime.min
    loads = orjson.loads
    for ident, stream, message_type, position, global_position, data, metadata, time in rows:
        if time != last_time:
            last_time, moment = time, _utc(time)
        messages.append(
            Message(
                str(ident),
                stream,
                message_type,
                position,
                global_position,
                loads(data) if data is not None else {},
                None if metadata is None else loads(metadata),
                moment,
            )
        )
    return messages


def raw_messages_from_rows(rows: Iterable[Sequence[Any]]) -> list[RawMessage]:
    """Rows ``(position, type, data, metadata, time)``, data and metadata left as JSON text."""
    messages: list[RawMessage] = []
    last_time: object = None
    moment = datetime.min
    for position, message_type, data, metadata, time in rows:
        if time != last_time:
            last_time, moment = time, _utc(time)
        messages.append(
            RawMessage(position, message_type, "{}" if data is None else data, metadata, moment)
        )
    return messages
