"""Test guests built once per run with the real componentize-py, cached by content hash.

Builds land in ``$THALO_CACHE_DIR`` (default ``~/.cache/thalo``): the first run
pays ~15 s per guest plus a compile, later runs load them in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from thalo.cli.build import build_project
from thalo.wasm import Limits, WasmModule, load_module

GUESTS = Path(__file__).resolve().parent / "guests"
PROJECTS = {
    "tally": GUESTS / "tally",
    "chaos": GUESTS / "chaos",
    "hostile": GUESTS.parents[1] / "guests" / "hostile",
    "liar": GUESTS.parents[1] / "runtime" / "guests" / "liar",
    "chaos-ts": GUESTS / "chaos-ts",
    "counter-ts": GUESTS.parents[1].parent / "examples" / "counter-ts",
}


@dataclass(frozen=True)
class Guest:
    """A built test guest: its component bytes and where it came from."""

    name: str
    wasm: bytes
    path: Path


@pytest.fixture(scope="session")
def guests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Guest]:
    out = tmp_path_factory.mktemp("guests")
    built = {}
    for name, project in PROJECTS.items():
        result = build_project(project, out / f"{name}.wasm")
        built[name] = Guest(name, result.path.read_bytes(), result.path)
    return built


@pytest.fixture
def counter(guests: dict[str, Guest]) -> WasmModule:
    return load_module(guests["tally"].wasm)


@pytest.fixture
def chaos(guests: dict[str, Guest]) -> WasmModule:
    return load_module(guests["chaos"].wasm, limits=Limits(call_seconds=0.5, memory_bytes=48 << 20))


@pytest.fixture
def chaos_ts(guests: dict[str, Guest]) -> WasmModule:
    """The TypeScript chaos guest (componentize-js), under the chaos guest's limits."""
    return load_module(
        guests["chaos-ts"].wasm, limits=Limits(call_seconds=0.5, memory_bytes=48 << 20)
    )


@pytest.fixture
def counter_ts(guests: dict[str, Guest]) -> WasmModule:
    """examples/counter-ts built with componentize-js."""
    return load_module(guests["counter-ts"].wasm)


@pytest.fixture
def hostile(guests: dict[str, Guest]) -> WasmModule:
    """The guest that abuses budgets on request (issue 11), under the default limits."""
    return load_module(guests["hostile"].wasm)
