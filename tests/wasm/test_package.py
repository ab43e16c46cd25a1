"""thalo.wasm's public names load lazily and all resolve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import thalo.wasm
from thalo.wasm import CompileCache, Limits
from thalo.wasm.cache import default_cache_dir
from thalo.wasm.engine import engine_fingerprint, wasmtime_version


def test_every_exported_name_resolves() -> None:
    for name in thalo.wasm.__all__:
        assert getattr(thalo.wasm, name).__name__ == name


def test_importing_thalo_wasm_does_not_load_wasmtime() -> None:
    code = "import sys, thalo.wasm; print('wasmtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_limits_are_validated() -> None:
    assert Limits(call_seconds=0.5).call_ticks == 100
    with pytest.raises(ValueError, match="time budgets must be positive"):
        Limits(call_seconds=0)
    with pytest.raises(ValueError, match="at least 1 MiB"):
        Limits(memory_bytes=1000)


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("THALO_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    entry = CompileCache().path("ab" * 32)
    assert entry.parent == tmp_path / "wasm" and entry.suffix == ".cwasm"
    assert wasmtime_version() in engine_fingerprint()
    monkeypatch.delenv("THALO_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "thalo"
