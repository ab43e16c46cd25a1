"""Running the app as a process: uvicorn, logging, and a graceful stop on SIGTERM/SIGINT.

On a signal the service stops taking commands and ends its event streams at
once; uvicorn then stops accepting, lets in-flight requests finish (up to
``shutdown_timeout``), and the lifespan stops the runner and closes the store.
"""

from __future__ import annotations

__all__ = ["JsonFormatter", "configure_logging", "serve"]

import logging
import sys
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import orjson
import uvicorn

from thalo.server.app import create_app
from thalo.server.config import ServerConfig
from thalo.server.service import Service

# Attributes every LogRecord has; the rest came in through ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(log_format: str) -> None:
    """Logs to stderr as text or JSON lines; no uvicorn access log (it would log paths)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").disabled = True


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service first when a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self._service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            loop.call_soon_threadsafe(self._service.begin_shutdown)
        super().handle_exit(sig, frame)


def serve(config: ServerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    configure_logging(config.log_format)
    service = Service(config)
    app = create_app(config, service)
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:  # pragma: no cover - httptools is a dependency
        http = "h11"
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=http,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(config.shutdown_timeout),
        backlog=2048,
    )
    logging.getLogger("thalo.server").info(
        "thalo serve on http://%s:%d (store %s)",
        config.host,
        config.port,
        _redacted(config.store_url),
        extra={"event": "start", "host": config.host, "port": config.port},
    )
    _Server(uv_config, service).run()
    if service.start_error is not None:  # e.g. the store is unreachable: exit with its code
        raise service.start_error


def _redacted(url: str) -> str:
    """The store URL without a password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
