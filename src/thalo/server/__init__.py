"""The HTTP API (docs/http.md): a Starlette app over one Runtime, served by uvicorn.

``thalo serve`` is ``serve(ServerConfig(...))``; ``create_app`` gives the ASGI
app alone, for embedding under another ASGI server.
"""

from thalo.server.app import create_app as create_app
from thalo.server.config import ServerConfig as ServerConfig
from thalo.server.process import serve as serve

__all__ = ["ServerConfig", "create_app", "serve"]
