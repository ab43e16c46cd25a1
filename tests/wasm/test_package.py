"""thalo.wasm's public names load lazily and all resolve."""

from __future__ import annotations

import subprocess
import sys

import thalo.wasm


def test_every_exported_name_resolves() -> None:
    for name in thalo.wasm.__all__:
        assert getattr(thalo.wasm, name).__name__ == name


def test_importing_thalo_wasm_does_not_load_wasmtime() -> None:
    code = "import sys, thalo.wasm; print('wasmtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
