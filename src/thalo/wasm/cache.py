"""Compiled components cached on disk, so a second process loads a module in milliseconds.

An entry is ``Component.serialize()`` output named by the sha256 of the component
bytes and of the engine fingerprint (wasmtime version and engine settings): an
artifact only deserializes into an identical engine. Entries are written to a
temporary file and renamed, so readers never see half an artifact. The
directory is capped in size, least recently used first (``thalo.wasm.cachedir``).
"""

from __future__ import annotations

__all__ = ["CompileCache", "default_cache_dir"]

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from thalo.wasm.cachedir import default_cache_dir, touch, trim
from thalo.wasm.engine import engine_fingerprint

if TYPE_CHECKING:
    from wasmtime import Engine
    from wasmtime.component import Component


class CompileCache:
    """A directory of serialized components (``<root>/wasm/<key>.cwasm``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.directory = (root if root is not None else default_cache_dir()) / "wasm"

    def path(self, sha256: str) -> Path:
        """Where the artifact for component bytes with this sha256 lives (maybe not yet)."""
        key = hashlib.sha256(f"{sha256};{engine_fingerprint()}".encode()).hexdigest()
        return self.directory / f"{key}.cwasm"

    def load(self, engine: Engine, wasm: bytes, sha256: str) -> tuple[Component, bool]:
        """The compiled component and whether it came from the cache.

        ``sha256`` is the hex digest of ``wasm`` (callers usually know it already).
        A missing or unreadable entry is (re)compiled and written back; compile
        errors propagate as ``WasmtimeError``.
        """
        from wasmtime import WasmtimeError
        from wasmtime.component import Component

        target = self.path(sha256)
        if target.is_file():
            try:
                component = Component.deserialize_file(engine, str(target))
                touch(target)
                return component, True
            except WasmtimeError:
                target.unlink(missing_ok=True)  # stale or corrupt: rebuild below
        component = Component(engine, wasm)
        self._write(target, bytes(component.serialize()))
        return component, False

    def _write(self, target: Path, data: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".cwasm")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            trim(self.directory.parent, keep=target)
        except OSError:
            # A read-only or full cache only costs the next process a compile.
            return
