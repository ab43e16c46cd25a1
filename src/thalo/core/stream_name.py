"""Stream names, as Message DB and Eventide define them.

``category-id``: the category is everything before the first ``-``; it may
carry types after a colon (``account:command``). The id may be compound
(``a+b``); its cardinal id is the part before the first ``+``.
"""

from __future__ import annotations

__all__ = [
    "aggregate_category",
    "cardinal_id",
    "category",
    "category_types",
    "command_stream_name",
    "entity_category",
    "entity_stream_name",
    "get_id",
    "is_category",
    "position_stream_name",
    "snapshot_stream_name",
    "stream_name",
    "validate_category",
    "validate_stream_name",
]

import re

from thalo.errors import InvalidStreamName

_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
MAX_STREAM_NAME_LENGTH = 1024


def validate_stream_name(name: object) -> str:
    """Return ``name`` if it is a usable stream name, else raise InvalidStreamName."""
    if not isinstance(name, str):
        raise InvalidStreamName(name, "a stream name must be a string")
    if not name:
        raise InvalidStreamName(name, "a stream name must not be empty")
    if len(name) > MAX_STREAM_NAME_LENGTH:
        raise InvalidStreamName(name, f"longer than {MAX_STREAM_NAME_LENGTH} characters")
    if _FORBIDDEN.search(name):
        raise InvalidStreamName(name, "whitespace and control characters are not allowed")
    head, sep, tail = name.partition("-")
    if not head:
        raise InvalidStreamName(name, "the category (the part before the first '-') is empty")
    if sep and not tail:
        raise InvalidStreamName(name, "the id (the part after the first '-') is empty")
    if head.startswith(":") or head.endswith(":"):
        raise InvalidStreamName(name, "a category type needs a name on both sides of ':'")
    return name


def validate_category(name: object) -> str:
    """Return ``name`` if it is a category (a stream name without an id)."""
    validate_stream_name(name)
    assert isinstance(name, str)
    if "-" in name:
        raise InvalidStreamName(name, "a category must not contain '-'")
    return name


def category(stream: str) -> str:
    """``account-123`` → ``account``; a category is its own category."""
    return stream.partition("-")[0]


def get_id(stream: str) -> str | None:
    """``account-123+x`` → ``123+x``; ``None`` for a category."""
    _, sep, tail = stream.partition("-")
    return tail if sep else None


def cardinal_id(stream: str) -> str | None:
    """``account-123+x`` → ``123``; ``None`` for a category."""
    ident = get_id(stream)
    return None if ident is None else ident.partition("+")[0]


def is_category(stream: str) -> bool:
    """True when ``stream`` names a whole category (has no ``-``)."""
    return "-" not in stream


def category_types(stream: str) -> tuple[str, ...]:
    """``account:command+snapshot-1`` → ``("command", "snapshot")``."""
    _, sep, types = category(stream).partition(":")
    return tuple(t for t in types.split("+") if t) if sep else ()


def stream_name(category_name: str, ident: str | None = None, *types: str) -> str:
    """Compose ``category[:type+type][-id]``, validated."""
    name = category_name
    if types:
        # Types add to those the category already carries: account:command+position.
        name += ("+" if ":" in category_name else ":") + "+".join(types)
    if ident is not None:
        name += f"-{ident}"
    return validate_stream_name(name)


def aggregate_category(aggregate: str) -> str:
    """Aggregate ``BankAccount`` → category ``bankAccount`` (Message DB's camelCase)."""
    if not aggregate:
        raise InvalidStreamName(aggregate, "an aggregate name must not be empty")
    return aggregate[0].lower() + aggregate[1:]


def entity_category(aggregate: str) -> str:
    """The event category of an aggregate: ``BankAccount`` → ``bankAccount``."""
    return validate_category(aggregate_category(aggregate))


def entity_stream_name(aggregate: str, entity_id: str) -> str:
    """``BankAccount``, ``acc-1`` → ``bankAccount-acc-1``."""
    return stream_name(aggregate_category(aggregate), entity_id)


def command_stream_name(aggregate: str, entity_id: str | None = None) -> str:
    """``bankAccount:command-acc-1`` (or the command category without an id)."""
    return stream_name(aggregate_category(aggregate), entity_id, "command")


def snapshot_stream_name(aggregate: str, entity_id: str) -> str:
    """``bankAccount:snapshot-acc-1``."""
    return stream_name(aggregate_category(aggregate), entity_id, "snapshot")


def position_stream_name(category_name: str, consumer: str) -> str:
    """Where a consumer records its read position: ``{category}:position-{consumer}``."""
    return stream_name(category(category_name), consumer, "position")
