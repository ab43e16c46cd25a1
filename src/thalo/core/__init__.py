"""Frozen values shared by every layer: stream names, messages, metadata keys."""

from thalo.core import metadata as metadata
from thalo.core.message import Message as Message
from thalo.core.message import NewMessage as NewMessage
from thalo.core.message import RawMessage as RawMessage
from thalo.core.message import new_message_id as new_message_id
from thalo.core.state import EntityState as EntityState
from thalo.core.state import WrittenBy as WrittenBy
from thalo.core.stream_name import aggregate_category as aggregate_category
from thalo.core.stream_name import cardinal_id as cardinal_id
from thalo.core.stream_name import category as category
from thalo.core.stream_name import category_types as category_types
from thalo.core.stream_name import command_stream_name as command_stream_name
from thalo.core.stream_name import entity_category as entity_category
from thalo.core.stream_name import entity_stream_name as entity_stream_name
from thalo.core.stream_name import get_id as get_id
from thalo.core.stream_name import is_category as is_category
from thalo.core.stream_name import position_stream_name as position_stream_name
from thalo.core.stream_name import snapshot_stream_name as snapshot_stream_name
from thalo.core.stream_name import stream_name as stream_name
from thalo.core.stream_name import validate_category as validate_category
from thalo.core.stream_name import validate_stream_name as validate_stream_name

__all__ = [
    "EntityState",
    "Message",
    "NewMessage",
    "RawMessage",
    "WrittenBy",
    "aggregate_category",
    "cardinal_id",
    "category",
    "category_types",
    "command_stream_name",
    "entity_category",
    "entity_stream_name",
    "get_id",
    "is_category",
    "metadata",
    "new_message_id",
    "position_stream_name",
    "snapshot_stream_name",
    "stream_name",
    "validate_category",
    "validate_stream_name",
]
