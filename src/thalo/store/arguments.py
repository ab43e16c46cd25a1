"""Checks on read and write arguments, shared by every backend.

Where Message DB's functions refuse an argument, the error carries Message DB's
own text (``get-category-messages.sql``, ``get-stream-messages.sql``), so both
backends fail the same way; where PostgreSQL would fail on a type limit (a
negative ``LIMIT``, a consumer group size beyond ``smallint``), the check says so
in words.
"""

from __future__ import annotations

__all__ = [
    "CONDITION_NOT_ACTIVATED",
    "MAX_CONSUMER_GROUP_SIZE",
    "MAX_INT64",
    "MIN_INT64",
    "check_batch_size",
    "check_category_read",
    "check_expected_version",
    "check_position",
    "check_stream_read",
    "check_type",
]

from thalo.core import validate_stream_name
from thalo.errors import InvalidStoreArgument, InvalidStreamName

CONDITION_NOT_ACTIVATED = "Retrieval with SQL condition is not activated"
# Message DB's bigint, and SQLite's INTEGER.
MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)
# get_category_messages passes the group size to PostgreSQL as a smallint.
MAX_CONSUMER_GROUP_SIZE = 32767


def _pg(value: int | None) -> str:
    """A value as PostgreSQL's RAISE prints it (NULL as ``<NULL>``)."""
    return "<NULL>" if value is None else str(value)


def _integer(value: object, name: str) -> int:
    """``value`` if it is an int that fits PostgreSQL's ``bigint`` (Message DB's type for
    positions, batch sizes and versions; SQLite's INTEGER is as wide), else the
    same InvalidStoreArgument on every backend."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidStoreArgument(f"{name} must be an integer, got {value!r}")
    if not MIN_INT64 <= value <= MAX_INT64:
        # str() of a huge int is slow and, past 4300 digits, refused by Python.
        bits = value.bit_length()
        shown = str(value) if bits <= 256 else f"an integer of {bits} bits"
        raise InvalidStoreArgument(
            f"{name} must fit in a signed 64-bit integer ({MIN_INT64} to {MAX_INT64}), got {shown}"
        )
    return value


def check_expected_version(value: object) -> int | None:
    """None (no check), -1 (stream must not exist) or a position ≥ 0."""
    if value is None:
        return None
    version = _integer(value, "expected_version")
    if version < -1:
        raise InvalidStoreArgument(
            f"expected_version must be None, -1 (the stream must not exist) or a position "
            f"≥ 0, got {version}"
        )
    return version


def check_position(value: object) -> int:
    return _integer(value, "position")


def check_batch_size(value: object) -> int:
    """-1 (no limit) or a count ≥ 0."""
    size = _integer(value, "batch_size")
    if size < -1:
        raise InvalidStoreArgument(f"batch_size must be -1 (no limit) or at least 0, got {size}")
    return size


def check_type(value: object) -> str | None:
    """A message type to filter on, or None."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidStoreArgument(f"type must be a message type name or None, got {value!r}")
    return value


def check_stream_read(stream_name: object) -> str:
    """A stream name with an id: Message DB's ``get_stream_messages`` refuses a category."""
    name = validate_stream_name(stream_name)
    if "-" not in name:
        raise InvalidStreamName(name, f"Must be a stream name: {name}")
    return name


def check_category_read(
    category: object,
    correlation: object,
    consumer_group_member: object,
    consumer_group_size: object,
) -> tuple[str, str | None, int | None, int | None]:
    """The checks of Message DB's ``get_category_messages``, in its order, with its text."""
    name = validate_stream_name(category)
    if "-" in name:
        raise InvalidStreamName(name, f"Must be a category: {name}")
    if correlation is not None:
        if not isinstance(correlation, str):
            raise InvalidStoreArgument(f"correlation must be a category name, got {correlation!r}")
        if "-" in correlation:
            raise InvalidStoreArgument(
                f"Correlation must be a category (Correlation: {correlation})"
            )
    member = (
        None
        if consumer_group_member is None
        else _integer(consumer_group_member, "consumer_group_member")
    )
    size = (
        None
        if consumer_group_size is None
        else _integer(consumer_group_size, "consumer_group_size")
    )
    where = f"(Consumer Group Member: {_pg(member)}, Consumer Group Size: {_pg(size)})"
    if (member is None) != (size is None):
        raise InvalidStoreArgument(f"Consumer group member and size must be specified {where}")
    if member is not None and size is not None:
        if size < 1:
            raise InvalidStoreArgument(f"Consumer group size must not be less than 1 {where}")
        if member < 0:
            raise InvalidStoreArgument(f"Consumer group member must not be less than 0 {where}")
        if member >= size:
            raise InvalidStoreArgument(
                f"Consumer group member must be less than the group size {where}"
            )
        if size > MAX_CONSUMER_GROUP_SIZE:
            raise InvalidStoreArgument(
                f"Consumer group size must not be more than {MAX_CONSUMER_GROUP_SIZE} "
                f"(Message DB passes it as a smallint) {where}"
            )
    return name, correlation, member, size
