"""Helpers of the client tests (a module of its own: test modules cannot import a conftest)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from serving import THALO, Served

__all__ = ["drain", "serving_on", "store_copy"]


def store_copy(template: Path, target: Path) -> str:
    """A private copy of the published template store: its URL."""
    shutil.copyfile(template, target)
    return f"sqlite:///{target.as_posix()}"


def drain(served: Served) -> list[str]:
    """Keep reading the server's stderr (one log line per request) so the pipe never fills.

    A full pipe would block the server's logging, and with it every request.
    The lines read are returned as they come.
    """
    lines: list[str] = []
    stream = served.proc.stderr

    def read() -> None:
        if stream is not None:
            for line in stream:
                lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


@contextmanager
def serving_on(store_url: str, port: int, *args: str) -> Iterator[Served]:
    """``thalo serve`` on a given port: restarting a server where its clients expect it."""
    proc = subprocess.Popen(
        [THALO, "serve", "--port", str(port), "--store", store_url, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}", proc, "", store_url)
    drain(served)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"thalo serve exited {proc.returncode}"
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "thalo serve did not answer /healthz in time"
            time.sleep(0.05)
        yield served
    finally:
        served.stop()
