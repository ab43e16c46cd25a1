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
]

CAUSATION_MESSAGE_STREAM_NAME = "causationMessageStreamName"
CAUSATION_MESSAGE_POSITION = "causationMessagePosition"
CAUSATION_MESSAGE_GLOBAL_POSITION = "causationMessageGlobalPosition"
CORRELATION_STREAM_NAME = "correlationStreamName"
REPLY_STREAM_NAME = "replyStreamName"
SCHEMA_VERSION = "schemaVersion"
# thalo's own
COMMAND_ID = "thaloCommandId"
MODULE_VERSION = "thaloModuleVersion"
