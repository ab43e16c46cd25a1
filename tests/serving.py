"""Starting the real `thalo serve` in a subprocess on a free loopback port, for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

THALO = str(Path(sys.executable).with_name("thalo"))
ADMIN_TOKEN = "test-admin-token"


@dataclass
class Served:
    """A running server: its base URL, process and admin token."""

    url: str
    proc: subprocess.Popen[str]
    admin_token: str
    store_url: str
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        """Signal the server and wait for it: (exit code, its stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        if self.reader is not None:  # stderr is being read into ``log``
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.reader.join(10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            return self.proc.returncode, "".join(self.log)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def _drain(proc: subprocess.Popen[str], into: list[str]) -> threading.Thread:
    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            into.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(
    store_url: str,
    *args: str,
    admin_token: str | None = ADMIN_TOKEN,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ready_timeout: float = 120,
    capture: bool = False,
    port: int | None = None,
) -> Iterator[Served]:
    """`thalo serve --store STORE_URL ARGS…` on a free port, stopped (SIGTERM) afterwards.

    With ``capture`` the server's log lines are read as they come into
    ``Served.log`` (so the pipe never fills and blocks the server).
    """
    port = port or free_port()
    command = [THALO, "serve", "--port", str(port), "--store", store_url, *args]
    if admin_token is not None:
        command += ["--admin-token", admin_token]
    proc = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL if capture else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    served = Served(url, proc, admin_token or "", store_url)
    if capture:
        served.reader = _drain(proc, served.log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"thalo serve exited {proc.returncode}:\n{out}\n{err}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("thalo serve did not answer /healthz in time")
            time.sleep(0.05)
        yield served
    finally:
        served.stop()


# --- requests -----------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


def post(
    http: httpx.Client,
    aggregate: str,
    entity: str,
    command: str,
    payload: Any = None,
    headers: dict[str, str] | None = None,
    **named: str,
) -> httpx.Response:
    """POST a command; ``Idempotency_Key="k"`` etc. become headers (``_`` → ``-``)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    hdrs = {**JSON, **(headers or {}), **{k.replace("_", "-"): v for k, v in named.items()}}
    return http.post(
        f"/aggregates/{aggregate}/{entity}/commands/{command}", content=body, headers=hdrs
    )


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and thalo code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].startswith("urn:thalo:problem:")
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body
