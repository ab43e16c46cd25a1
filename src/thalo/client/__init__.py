"""thalo.client: Python clients for the HTTP API of ``thalo serve`` (docs/http.md).

``Client`` blocks, ``AsyncClient`` awaits; both raise the ``ThaloError`` the
server raised. Importing this package loads httpx and thalo's core values only:
no wasm host, no store driver, no server stack.
"""

from __future__ import annotations

from thalo.client.client import AsyncClient, Client, CommandResult, Submission
from thalo.client.sse import ServerSentEvent, SSEDecoder

__all__ = ["AsyncClient", "Client", "CommandResult", "SSEDecoder", "ServerSentEvent", "Submission"]
