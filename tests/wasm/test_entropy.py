"""Fixed build-time entropy (``thalo.wasm.entropy``): builds of one source come out the same
but for file timestamps, so the registry stores a new version as a delta of kilobytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from components import Built
from helpers import EXAMPLES

from thalo.cli.build import build_project
from thalo.registry import blobs
from thalo.wasm.entropy import fixed_entropy_library, preload_env

_DRAW = (
    "import os, random, secrets; print(os.urandom(16).hex(), secrets.token_hex(8), random.random())"
)

_COMPILER = any(shutil.which(c) for c in ("cc", "gcc", "clang"))
needs_compiler = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _COMPILER,
    reason="fixed build entropy needs Linux (LD_PRELOAD) and a C compiler",
)


def _draw(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _DRAW],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@needs_compiler
def test_a_preloaded_process_draws_the_same_entropy_every_time(tmp_path: Path) -> None:
    library = fixed_entropy_library(tmp_path)
    assert library is not None and library.parent == tmp_path.resolve() / "toolchain"
    env = preload_env(tmp_path)
    assert env == {"LD_PRELOAD": str(library)}
    assert _draw(env) == _draw(env)
    assert _draw({}) != _draw({})  # the same probe without it: the OS's entropy
    assert fixed_entropy_library(tmp_path) == library  # compiled once, then reused


def test_without_a_compiler_builds_keep_the_os_entropy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert fixed_entropy_library(tmp_path / "cache") is None
    assert preload_env(tmp_path / "cache") == {}
    assert not list(tmp_path.rglob("*.so"))


@needs_compiler
def test_builds_can_opt_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THALO_REPRODUCIBLE_BUILDS", "0")
    assert preload_env(tmp_path) == {}
    monkeypatch.setenv("THALO_REPRODUCIBLE_BUILDS", "1")
    assert preload_env(tmp_path) != {}


@pytest.mark.wasm
@pytest.mark.slow
@needs_compiler
def test_two_builds_of_one_source_differ_only_in_a_few_bytes(
    built: dict[str, Built], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh build (its own cache) against the suite's build of examples/counter, made
    as on another machine: a ``python3`` on PATH whose site-packages hold other packages
    (componentize-py would mount them into the guest)."""
    packages = tmp_path / "elsewhere" / "site-packages"
    for name in ("requests", "numpy", "attr"):
        (packages / name).mkdir(parents=True)
        (packages / name / "__init__.py").write_text("")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").write_text(f"#!/bin/sh\necho '{packages}'\n")
    (shim / "python3").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    fresh = build_project(EXAMPLES / "counter", tmp_path / "counter.wasm", cache_root=tmp_path)
    assert not fresh.cached
    ours, theirs = fresh.path.read_bytes(), built["Counter"].wasm
    assert len(ours) == len(theirs)
    differing = sum(a != b for a, b in zip(ours, theirs, strict=True))
    base = (hashlib.sha256(theirs).hexdigest(), theirs)
    delta = blobs.compress(ours, hashlib.sha256(ours).hexdigest(), base)
    print(f"\n{differing} of {len(ours)} bytes differ; zstd delta {len(delta.data)} bytes")
    assert differing < len(ours) // 10_000  # file timestamps only; was ~13 million bytes
    assert delta.encoding == "zstd-delta" and len(delta.data) < 32_000  # was ~1.1 MB
