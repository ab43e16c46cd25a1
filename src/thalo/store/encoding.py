"""Messages to and from the database: validation, strict JSON, and rows back to ``Message``.

Both backends encode through here, so bad input is refused with the same error
and text everywhere, before anything reaches a database.
"""

from __future__ import annotations

__all__ = [
    "MAX_STREAM_NAME_BYTES",
    "EncodedMessage",
    "decode_json",
    "encode_messages",
    "messages_from_rows",
    "raw_messages_from_rows",
]

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from thalo.core import Message, NewMessage, RawMessage, validate_stream_name
from thalo.errors import InvalidMessage, InvalidStreamName

# Message DB indexes stream_name (messages_stream) and the categories of the stream
# name and of metadata->>'correlationStreamName' together (messages_category). A
# btree index row holds at most 2704 bytes on PostgreSQL's 8 kB pages, and text
# that does not compress (emoji, random ids) is stored as is: 1024 bytes for each
# of the two names keeps the widest row near 2,100 bytes. Checked on every
# backend, so SQLite refuses what PostgreSQL would.
MAX_STREAM_NAME_BYTES = 1024
_CORRELATION = "correlationStreamName"

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


# A JSON string (skipped as is) or a number with a positive exponent or a negative
# zero, in orjson's output (orjson writes ``1e+16``, ``-1.5e+20``, ``-0.0``).
_NUMBER_TO_REWRITE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?[0-9.]+e\+[0-9]+|-0\.0(?![0-9e]))')


def _rewrite_number(match: re.Match[str]) -> str:
    number = match.group(1)
    if number is None:  # a string
        return match.group(0)
    if number == "-0.0":
        return "0.0"
    # Floats this large are integral: their exact value, written positionally.
    return f"{int(float(number))}.0"


def _canonical_numbers(text: str) -> str:
    """Numbers whose type or sign PostgreSQL's jsonb would not keep, rewritten for both.

    jsonb stores numbers as ``numeric`` and prints ``1e+16`` as
    ``10000000000000000``, which reads back as an integer, and ``-0.0`` as ``0.0``
    (numeric has no negative zero). So a float with a positive exponent is written
    positionally with ``.0`` (jsonb keeps that scale: it reads back as the same
    float) and ``-0.0`` as ``0.0``, on every backend: what reads back is what the
    stored JSON text says, the same on SQLite and Message DB.
    """
    return _NUMBER_TO_REWRITE.sub(_rewrite_number, text)


def _finite(value: object) -> bool:
    """False when a float in ``value`` is NaN or ±Infinity (orjson writes them as null)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return False
        elif isinstance(item, dict):
            stack.extend(item.values())
    return True


def _dumps(value: object, what: str, message_type: str) -> str:
    """Strict JSON text of ``value``: refuses what JSON or PostgreSQL cannot carry.

    The checks after ``orjson.dumps`` are substring scans of its output, so a
    payload pays for a walk or a rewrite only when the text hints at one: NaN and
    ±Infinity come out as ``null`` (a walk then tells them from real nulls), a
    positive exponent or ``-0.0`` needs :func:`_canonical_numbers`. The scans run
    on the decoded ``str``: ``in`` on ``bytes`` costs ~170 ns a scan here, on
    ``str`` ~30 ns (four scans cost less than the one on bytes did before).
    """
    try:
        text = orjson.dumps(value, option=_DUMP_OPTIONS, default=_reject).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidMessage(
            f"the {what} of message {message_type!r} is not JSON-serializable: {exc}"
        ) from exc
    if "null" in text and not _finite(value):
        raise InvalidMessage(
            f"the {what} of message {message_type!r} holds NaN or Infinity, which JSON cannot carry"
        )
    if "\\u0000" in text:
        raise InvalidMessage(
            f"the {what} of message {message_type!r} contains a NUL character (\\u0000), "
            "which PostgreSQL cannot store"
        )
    if "e+" in text or "-0.0" in text:
        text = _canonical_numbers(text)
    return text


def _check_correlation(metadata: dict[str, Any], message_type: str) -> None:
    """``correlationStreamName``: a string of at most MAX_STREAM_NAME_BYTES, or null.

    Message DB indexes its category and matches a correlation filter on the
    value's JSON text (``5`` would match category ``5``); one rule for every
    backend: anything but a string or null is refused.
    """
    value = metadata.get(_CORRELATION)
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidMessage(
            f"the metadata of message {message_type!r}: {_CORRELATION} must be a stream "
            f"name (a string) or null, got {type(value).__name__}"
        )
    if len(value) * 4 > MAX_STREAM_NAME_BYTES and len(value.encode()) > MAX_STREAM_NAME_BYTES:
        raise InvalidMessage(
            f"the metadata of message {message_type!r}: {_CORRELATION} is "
            f"{len(value.encode())} bytes in UTF-8; it may have at most {MAX_STREAM_NAME_BYTES}"
        )


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
    metadata = None
    if message.metadata is not None:
        metadata = _dumps(message.metadata, "metadata", message.type)
        if _CORRELATION in message.metadata:
            _check_correlation(message.metadata, message.type)
    return EncodedMessage(canonical_id, message.type, data, metadata, message.metadata)


def encode_messages(stream_name: object, messages: Sequence[object]) -> list[EncodedMessage]:
    """Validate the stream name and every message; raise before anything is written."""
    validate_stream_name(stream_name)
    assert isinstance(stream_name, str)
    # UTF-8 takes at most 4 bytes a character: shorter names need no encoding.
    if len(stream_name) * 4 > MAX_STREAM_NAME_BYTES:
        size = len(stream_name.encode())
        if size > MAX_STREAM_NAME_BYTES:
            raise InvalidStreamName(
                stream_name,
                f"{size} bytes in UTF-8; a stream name may have at most {MAX_STREAM_NAME_BYTES}",
            )
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
