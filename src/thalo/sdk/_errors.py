"""What an aggregate raises to answer a command without producing events."""

from __future__ import annotations

__all__ = ["DispatchError", "Ignore", "Rejected"]


class Rejected(Exception):
    """Raised by a ``handle_*`` method: the command is refused for a domain reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Ignore(Exception):
    """Raised by a ``handle_*`` method: the command is a no-op (usually: already processed)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "ignored")
        self.reason = reason


class DispatchError(Exception):
    """The SDK could not route or decode a call; ``kind`` names the WIT error case.

    ``kind`` is one of ``"unknown-command"``, ``"unknown-event"`` or ``"decode"``.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
