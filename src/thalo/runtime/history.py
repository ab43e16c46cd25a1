"""Which module versions wrote a stream: the ``thaloModuleVersion`` on its events.

Time travel replays a past state with the version that wrote the last event
replayed (docs/design.md, "Versions"), and says which versions wrote the rest.
"""

from __future__ import annotations

__all__ = ["written_by"]

from collections.abc import Callable

import orjson

from thalo.core import RawMessage, WrittenBy
from thalo.core import metadata as keys
from thalo.store import MessageStore


async def written_by(
    store: MessageStore,
    stream: str,
    until: Callable[[RawMessage], bool] | None,
    batch_size: int,
) -> tuple[WrittenBy, ...]:
    """The runs of equal module versions on ``stream``'s events, from its start while
    ``until`` holds; an event without the key continues no run (``None``)."""
    spans: list[WrittenBy] = []
    position = 0
    while True:
        batch = await store.get_stream_raw(stream, position, batch_size)
        for message in batch:
            if until is not None and not until(message):
                return tuple(spans)
            version = _module_version(message.metadata)
            if spans and spans[-1].module_version == version:
                spans[-1] = WrittenBy(version, spans[-1].first, message.position)
            else:
                spans.append(WrittenBy(version, message.position, message.position))
        if len(batch) < batch_size:
            return tuple(spans)
        position = batch[-1].position + 1


def _module_version(metadata: str | None) -> str | None:
    if metadata is None or keys.MODULE_VERSION not in metadata:
        return None
    try:
        value = orjson.loads(metadata).get(keys.MODULE_VERSION)
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
