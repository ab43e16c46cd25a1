"""Bearer tokens: the admin token, and client tokens optionally limited to aggregates.

Tokens are kept as SHA-256 digests, so a lookup never compares secrets byte by
byte, and nothing that holds them can print them.
"""

from __future__ import annotations

__all__ = ["Access", "Tokens", "load_tokens"]

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from thalo.core import aggregate_category
from thalo.errors import UsageError


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Access:
    """What one token may do: every aggregate (``aggregates`` None) or only those named."""

    aggregates: frozenset[str] | None = None
    admin: bool = False

    def allows_aggregate(self, aggregate: str) -> bool:
        return self.admin or self.aggregates is None or aggregate in self.aggregates

    def allows_category(self, category: str) -> bool:
        """A category (``counter``, ``counter:command``…) of an allowed aggregate."""
        if self.admin or self.aggregates is None:
            return True
        base = category.split(":", 1)[0]
        return any(aggregate_category(name) == base for name in self.aggregates)


@dataclass(frozen=True, slots=True)
class Tokens:
    """Client tokens from a ``--token-file``; empty: reads and commands are open."""

    _by_digest: dict[bytes, Access] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return bool(self._by_digest)

    def access(self, token: str) -> Access | None:
        return self._by_digest.get(_digest(token))

    def __len__(self) -> int:
        return len(self._by_digest)


def load_tokens(path: Path) -> Tokens:
    """Parse a token file: ``TOKEN`` or ``TOKEN Aggregate1,Aggregate2`` per line, ``#`` comments."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the token file {path}: {exc}") from None
    found: dict[bytes, Access] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        token, _, rest = line.partition(" ")
        names = frozenset(n.strip() for n in rest.replace(" ", ",").split(",") if n.strip())
        if len(token) < 16:
            raise UsageError(
                f"{path}:{number}: a token must be at least 16 characters (the token is not shown)"
            )
        found[_digest(token)] = Access(names or None)
    if not found:
        raise UsageError(f"the token file {path} holds no token")
    return Tokens(found)
