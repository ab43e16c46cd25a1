"""Running the app as a process: uvicorn, logging, and a graceful stop on SIGTERM/SIGINT.

On a signal the service stops taking commands and ends its event streams at
once; uvicorn then stops accepting, lets in-flight requests finish (up to
``shutdown_timeout``), and the lifespan stops the runner and closes the store.
"""

from __future__ import annotations

__all__ = ["JsonFormatter", "configure_logging", "serve"]

import asyncio
import io
import logging
import socket
import sys
import threading
import time
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


class _BatchedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines go to a buffer that a background thread flushes every 0.2 s.

    One line per request written straight to stderr costs a write() system call
    each (stderr is line-buffered); batching takes that off the event loop.
    Warnings and errors are flushed at once, and logging's shutdown flushes the rest.
    """

    def __init__(self) -> None:
        stream = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(sys.stderr.fileno(), "w", closefd=False), 1 << 16),
            encoding="utf-8",
            errors="backslashreplace",
        )
        super().__init__(stream)
        threading.Thread(target=self._flush_often, name="thalo-log", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
        except Exception:
            self.handleError(record)

    def _flush_often(self) -> None:
        while True:
            time.sleep(0.2)
            self.flush()


def configure_logging(log_format: str) -> None:
    """Logs to stderr as text or JSON lines; no uvicorn access log (it would log paths)."""
    handler = _BatchedHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").disabled = True


HEADER_TIMEOUT = 10.0  # seconds a client gets to send a request's headers


def _guarded_protocol() -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing connections whose headers never complete.

    uvicorn bounds idle keep-alive time but not a request's headers, so a client
    trickling header bytes (slowloris) would keep its connection forever.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the first bytes of the next request on a kept-alive connection
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()
            self.cycle.transport = _CoalescingWrites(self.transport, self.loop)  # type: ignore[assignment]

    return GuardedProtocol


class _CoalescingWrites:
    """A transport whose consecutive writes (status line and headers, then the body) leave
    in one ``send()``: one system call and one TCP segment per response instead of two."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = data  # held until the next write, or the end of this loop step
            self._loop.call_soon(self._flush)
            return
        data, self._pending = self._pending + data, None
        self._transport.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not self._transport.is_closing():
            self._transport.write(pending)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service first when a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self._service = service

    async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
        await super()._serve(sockets)
        # A graceful stop is a clean exit (status 0): uvicorn would re-raise the signal.
        self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
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
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=_guarded_protocol(),
        loop=_loop(),
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(config.shutdown_timeout),
        backlog=2048,
    )
    asyncio.run(_check_store(config.store_url))  # a clear error (exit 5) before binding
    logging.getLogger("thalo.server").info(
        "thalo serve on http://%s:%d (store %s)",
        config.host,
        config.port,
        _redacted(config.store_url),
        extra={"event": "start", "host": config.host, "port": config.port},
    )
    try:
        _Server(uv_config, service).run()
    except SystemExit:
        if service.start_error is not None:  # the store went away since: exit with its code
            raise service.start_error from None
        raise


async def _check_store(url: str) -> None:
    """Open the store once: an unreachable or uninitialized store fails here, plainly."""
    from thalo.store import open_store

    async with open_store(url):
        pass


def _loop() -> str:
    """uvloop where it is installed (not on Windows): a faster event loop for the server."""
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency on every platform but Windows
        return "asyncio"
    return "uvloop"


def _redacted(url: str) -> str:
    """The store URL without a password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
