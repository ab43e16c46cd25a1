"""Answers of a guest that are not events: the WIT ``error`` cases, and a lost entity.

The runtime maps these to its own errors (``GuestRejected`` → ``CommandRejected`` with
aggregate, entity and command names); the wasm layer knows none of those names.
"""

from __future__ import annotations

__all__ = [
    "EntityLost",
    "GuestAnswer",
    "GuestDecodeFailed",
    "GuestIgnored",
    "GuestRejected",
    "GuestUnknownCommand",
    "GuestUnknownEvent",
    "InstanceBusy",
]

from thalo.errors import GuestError, WasmError


class GuestAnswer(WasmError):
    """The guest returned the WIT ``error`` variant; ``case`` is its WIT case name."""

    case: str = ""

    def __init__(self, detail: str | None) -> None:
        super().__init__(f"{self.case}: {detail}" if detail else self.case)
        self.detail = detail


class GuestRejected(GuestAnswer):
    """``rejected(reason)``: the aggregate refused the command (a domain decision)."""

    case = "rejected"
    exit_code = 1
    http_status = 409

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuestIgnored(GuestAnswer):
    """``ignored(reason?)``: the command is a no-op, typically a redelivery."""

    case = "ignored"
    exit_code = 0
    http_status = 200

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason)
        self.reason = reason


class GuestUnknownCommand(GuestAnswer):
    """``unknown-command(name)``: the guest has no handler of that name."""

    case = "unknown-command"
    http_status = 404


class GuestUnknownEvent(GuestAnswer):
    """``unknown-event(type)``: the guest cannot apply an event of that type."""

    case = "unknown-event"


class GuestDecodeFailed(GuestAnswer):
    """``decode(message)``: a command, event, ctx or snapshot did not fit the guest's types."""

    case = "decode"
    http_status = 422


class EntityLost(GuestError):
    """The entity lived in an instance that trapped or was closed: rebuild it from its stream."""

    def __init__(self, entity_id: str, why: str) -> None:
        super().__init__(f"entity {entity_id!r} is gone ({why}): rebuild it from its events")
        self.entity_id = entity_id
        self.why = why


class InstanceBusy(WasmError):
    """A call that must not wait found the entity's instance running another call.

    Raised only for ``wait=False`` calls (the runtime's inline path on the event
    loop), which then run the call on a worker thread instead of blocking.
    """

    def __init__(self, entity_id: str) -> None:
        super().__init__(f"entity {entity_id!r}: its instance is busy with another call")
        self.entity_id = entity_id
