"""What the current thread is doing in guest code, and what guest calls cost it.

A light module (no wasmtime import), so the runtime can read a call's CPU time
without loading the host: :func:`guest_cpu_seconds` before and after a call.
"""

from __future__ import annotations

__all__ = ["current", "guest_cpu_seconds"]

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thalo.wasm.instance import Instance


class _Current(threading.local):
    """Per thread: the instance and entity of the running guest call (read by the
    log import), and the CPU seconds guest calls have used on this thread."""

    instance: Instance | None = None
    entity: str | None = None
    cpu: float = 0.0


current = _Current()


def guest_cpu_seconds() -> float:
    """CPU seconds this thread has spent in guest calls so far (monotonic)."""
    return current.cpu
