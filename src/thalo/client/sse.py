"""A small Server-Sent Events parser (the WHATWG event-stream format), fed line by line.

The client needs only what ``thalo serve`` sends (``id``, ``event``, ``data``,
``retry`` and keep-alive comments), and owning the parser keeps the client's
dependencies to httpx alone.
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "ServerSentEvent"]

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type, data (lines joined by newlines) and last event id."""

    event: str
    data: str
    id: str | None


class SSEDecoder:
    """Turns event-stream lines (without their line endings) into events.

    ``feed`` returns an event when a blank line completes one. ``last_event_id``
    persists across events as the specification says, and ``retry`` holds the
    reconnection delay (milliseconds) the server asked for, if any.
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        """Process one line; the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def reset(self) -> None:
        """Discard a half-received event: the connection ended (the id and retry stay)."""
        self._data, self._event = [], ""

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self.last_event_id)
