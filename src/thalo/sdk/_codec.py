"""JSON helpers shared by the generated code and the dispatcher (standard library only)."""

from __future__ import annotations

__all__ = ["decode_bytes", "encode_bytes", "snake_case"]

import base64
import binascii
import re

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def encode_bytes(value: bytes) -> str:
    """ESDL ``Bytes`` travel in JSON as standard base64 text."""
    return base64.b64encode(value).decode("ascii")


def decode_bytes(text: str) -> bytes:
    """The inverse of :func:`encode_bytes`; raises ``ValueError`` on malformed base64."""
    if not isinstance(text, str):
        raise ValueError(f"expected base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def snake_case(name: str) -> str:
    """``OpenedAccount`` -> ``opened_account``, ``openAccount`` -> ``open_account``."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()
