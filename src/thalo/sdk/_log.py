"""Log lines from aggregate code: the host's ``log`` import in wasm, ``logging`` natively."""

from __future__ import annotations

__all__ = ["LEVELS", "log", "set_sink"]

import logging
from collections.abc import Callable

LEVELS = ("debug", "info", "warn", "error")
_PY_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}


def _native_sink(level: str, message: str) -> None:
    logging.getLogger("thalo.guest").log(_PY_LEVELS.get(level, logging.ERROR), message)


_sink: Callable[[str, str], None] = _native_sink


def set_sink(sink: Callable[[str, str], None]) -> None:
    """Routes log lines elsewhere (the component glue points this at the host import)."""
    global _sink
    _sink = sink


def log(level: str, message: str) -> None:
    """Writes one log line; ``level`` is ``debug``, ``info``, ``warn`` or ``error``."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    _sink(level, message)
