"""Commands through the store: ``submit`` writes one to ``{category}:command-{id}``, a
``thalo run`` (or ``thalo serve``) executes it and answers in a reply stream, which
``wait`` and ``outcome`` read (docs/runtime.md, "Commands through the store").
"""

from __future__ import annotations

__all__ = ["REPLY_CATEGORY", "REPLY_FAILED", "REPLY_SUCCEEDED", "CommandStreams", "Submitted"]

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from thalo.core import Message, NewMessage, command_stream_name, new_message_id, stream_name
from thalo.core import metadata as keys
from thalo.errors import CommandFailed, CommandTimeout, DuplicateMessageId
from thalo.runtime.modules import ModuleSet
from thalo.runtime.recorded import Recorded
from thalo.store import MessageStore

REPLY_CATEGORY = "thaloReply"
REPLY_SUCCEEDED = "CommandSucceeded"
REPLY_FAILED = "CommandFailed"
_SUBMIT_NAMESPACE = uuid.UUID("5f0c3a8e-2b1d-4e7a-9c1f-7d2b6a4e8c10")


@dataclass(frozen=True, slots=True)
class Submitted:
    """A command written to a command stream, and where its outcome will be reported."""

    aggregate: str
    entity_id: str
    command: str
    message_id: str
    stream_name: str
    position: int
    reply_stream_name: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json`` and the HTTP API."""
        return {
            "aggregate": self.aggregate,
            "id": self.entity_id,
            "command": self.command,
            "message_id": self.message_id,
            "stream_name": self.stream_name,
            "position": self.position,
            "reply_stream_name": self.reply_stream_name,
        }


class CommandStreams:
    """Submits commands to command streams and reads their replies."""

    def __init__(
        self,
        store: MessageStore,
        modules: ModuleSet,
        read: Callable[[str, int, int], Awaitable[list[Message]]],
    ) -> None:
        self.store = store
        self.modules = modules
        self._read = read

    async def submit(
        self,
        aggregate: str,
        entity_id: str,
        command: str,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        reply: bool = True,
    ) -> Submitted:
        """Write the command to ``{category}:command-{id}`` for a ``thalo run`` to execute.

        The payload is validated first, so nothing invalid enters a command stream.
        With ``reply``, the runtime that executes it reports the outcome in a reply
        stream (``wait`` reads it). A ``command_id`` makes the submission
        idempotent: the message id and reply stream derive from it, so submitting
        it again writes nothing and returns the same reply stream (position -1).
        """
        body = dict(payload or {})
        module = await self.modules.current(aggregate)
        module.schema.validate_command(command, body)
        meta: dict[str, Any] = dict(metadata or {})
        stream = command_stream_name(module.name, entity_id)
        if command_id is None:
            message_id = new_message_id()
            reply_id = new_message_id()
        else:
            message_id = _keyed_uuid(f"{stream}\n{command_id}")
            reply_id = _keyed_uuid(f"reply\n{stream}\n{command_id}")
        meta[keys.COMMAND_ID] = command_id or message_id
        reply_stream = stream_name(REPLY_CATEGORY, reply_id) if reply else None
        if reply_stream is not None:
            meta[keys.REPLY_STREAM_NAME] = reply_stream
        message = NewMessage(type=command, data=body, metadata=meta, id=message_id)
        try:
            position = await self.store.write_message(stream, message)
        except DuplicateMessageId:
            if command_id is None:
                raise
            position = -1  # submitted before: its outcome is in the same reply stream
        return Submitted(
            module.name, entity_id, command, message_id, stream, position, reply_stream
        )

    async def wait(
        self, submitted: Submitted, *, timeout: float = 30.0, poll_interval: float = 0.05
    ) -> list[Message]:
        """The events a submitted command recorded, once a runtime has executed it.

        Raises ``CommandFailed`` (carrying the remote error and exit code) when it
        failed, and ``CommandTimeout`` when no runtime answered within ``timeout``.
        """
        if submitted.reply_stream_name is None:
            raise ValueError("the command was submitted without a reply stream")
        recorded = await self.outcome(
            submitted.reply_stream_name, timeout=timeout, poll_interval=poll_interval
        )
        if recorded is None:
            where = (
                f"at position {submitted.position}"
                if submitted.position >= 0
                else "(submitted before with this command id)"
            )
            raise CommandTimeout(
                f"no runtime executed {submitted.command} for {submitted.aggregate} "
                f"{submitted.entity_id!r} within {timeout:g} s. It is queued in "
                f"{submitted.stream_name} {where} and will run when a `thalo run` or "
                "`thalo serve` consumes that stream; nothing is lost by waiting"
            )
        return await self._read(recorded.stream_name, recorded.position, recorded.count)

    async def outcome(
        self, reply_stream_name: str, *, timeout: float = 0.0, poll_interval: float = 0.05
    ) -> Recorded | None:
        """Where a submitted command's events landed, read from its reply stream.

        None while no runtime has answered within ``timeout`` seconds; raises
        ``CommandFailed`` (carrying the remote error) when the command failed.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            answer = await self.store.get_last_stream_message(reply_stream_name)
            if answer is not None:
                break
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(poll_interval)
        data = answer.data
        if answer.type == REPLY_FAILED:
            fields = data.get("fields")
            raise CommandFailed(
                str(data.get("error")),
                str(data.get("message")),
                int(data.get("exitCode", 2)),
                int(data.get("httpStatus", 500)),
                fields if isinstance(fields, dict) else None,
            )
        position, count = int(data["position"]), int(data["count"])
        return Recorded(
            str(data["streamName"]),
            position,
            count,
            int(data.get("version", position + count - 1)),
            bool(data.get("duplicate", False)),
        )


def _keyed_uuid(key: str) -> str:
    """A UUID determined by ``key`` (Message DB ids are UUIDs; command ids are any text)."""
    return str(uuid.uuid5(_SUBMIT_NAMESPACE, key))
