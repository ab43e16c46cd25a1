"""Consumer-group partitioning, computed exactly as Message DB computes it.

Message DB (``hash-64.sql``): ``left('x' || md5(value), 17)::bit(64)::bigint``,
the first 16 hex digits of the MD5 of the UTF-8 text read as a signed 64-bit
integer. ``get_category_messages`` keeps a message for member ``m`` of a group
of ``n`` when ``MOD(@hash_64(cardinal_id(stream_name)), n) = m``; a stream
without an id (a category name used as a stream) has no cardinal id, so its
hash is NULL and no member receives it.
"""

from __future__ import annotations

__all__ = ["consumer_group_member", "hash_64"]

import hashlib

from thalo.core import cardinal_id

_SIGN = 1 << 63
_WRAP = 1 << 64


def hash_64(value: str) -> int:
    """Message DB's ``hash_64(value)``: a signed 64-bit integer."""
    digest = int(hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()[:16], 16)
    return digest - _WRAP if digest >= _SIGN else digest


def consumer_group_member(stream_name: str, consumer_group_size: int) -> int | None:
    """Which member of a group of ``consumer_group_size`` reads ``stream_name`` (None: none)."""
    ident = cardinal_id(stream_name)
    return None if ident is None else abs(hash_64(ident)) % consumer_group_size
