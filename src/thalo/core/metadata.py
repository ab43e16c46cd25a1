"""Metadata keys: Message DB / Eventide conventions (camelCase) plus thalo's own."""

from __future__ import annotations

__all__ = [
    "CAUSATION_MESSAGE_GLOBAL_POSITION",
    "CAUSATION_MESSAGE_POSITION",
    "CAUSATION_MESSAGE_STREAM_NAME",
    "COMMAND_ID",
    "CORRELATION_STREAM_NAME",
    "MODULE_VERSION",
    "REPLY_STREAM_NAME",
    "SCHEMA_VERSION",
    "stored_version",
]

import orjson

CAUSATION_MESSAGE_STREAM_NAME = "causationMessageStreamName"
CAUSATION_MESSAGE_POSITION = "causationMessagePosition"
CAUSATION_MESSAGE_GLOBAL_POSITION = "causationMessageGlobalPosition"
CORRELATION_STREAM_NAME = "correlationStreamName"
REPLY_STREAM_NAME = "replyStreamName"
SCHEMA_VERSION = "schemaVersion"
# thalo's own
COMMAND_ID = "thaloCommandId"
MODULE_VERSION = "thaloModuleVersion"


def stored_version(metadata: str | None) -> int:
    """The ``schemaVersion`` in an event's metadata JSON: 1 when absent or unreadable
    (events written before thalo recorded it were of the first version)."""
    if metadata is None:
        return 1
    try:
        value = orjson.loads(metadata).get(SCHEMA_VERSION)
        return int(value) if value is not None else 1
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 1
