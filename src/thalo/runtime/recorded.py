"""Where a command's events landed: what ``Runtime.record`` returns."""

from __future__ import annotations

__all__ = ["Recorded"]

from dataclasses import dataclass

from thalo.core import Message


@dataclass(frozen=True, slots=True)
class Recorded:
    """Where a command's events landed: ``count`` events from ``position`` of ``stream_name``.

    ``duplicate`` is true when the command id had been executed before and
    nothing new was written. ``version`` is the stream version the command
    left (what an HTTP ``ETag`` reports; -1 for a stream still empty).
    ``events`` are the recorded messages when they were read back.
    """

    stream_name: str
    position: int
    count: int
    version: int
    duplicate: bool = False
    events: tuple[Message, ...] = ()
