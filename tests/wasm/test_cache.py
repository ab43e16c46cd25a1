"""The cache directory: a size cap with least-recently-used eviction, `thalo cache info|clear`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from thalo.errors import UsageError
from thalo.wasm import CompileCache, load_module
from thalo.wasm.cachedir import DEFAULT_MAX_SIZE, clear, info, max_size, parse_size, trim

THALO = str(Path(sys.executable).with_name("thalo"))


def _entry(root: Path, kind: str, name: str, size: int, age: float) -> Path:
    """A cache file of ``size`` bytes last used ``age`` seconds ago."""
    suffix = ".wasm" if kind == "builds" else ".cwasm"
    path = root / kind / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_sizes_parse_with_units_and_bad_ones_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [parse_size(t) for t in ("2GB", "500 MB", "1.5GiB", "1024", "3k")] == [
        2_000_000_000,
        500_000_000,
        int(1.5 * 1024**3),
        1024,
        3000,
    ]
    monkeypatch.delenv("THALO_CACHE_MAX_SIZE", raising=False)
    assert max_size() == DEFAULT_MAX_SIZE == 2_000_000_000
    monkeypatch.setenv("THALO_CACHE_MAX_SIZE", "250MB")
    assert max_size() == 250_000_000
    monkeypatch.setenv("THALO_CACHE_MAX_SIZE", "lots")
    with pytest.raises(UsageError, match="invalid size 'lots'"):
        max_size()


def test_trim_evicts_least_recently_used_first_and_keeps_the_new_entry(tmp_path: Path) -> None:
    oldest = _entry(tmp_path, "wasm", "a", 400, age=300)
    old = _entry(tmp_path, "builds", "b", 300, age=200)
    recent = _entry(tmp_path, "wasm", "c", 200, age=100)
    new = _entry(tmp_path, "builds", "d", 500, age=0)
    stale_tmp = tmp_path / "wasm" / ".tmp-dead.cwasm"
    stale_tmp.write_bytes(b"x")
    os.utime(stale_tmp, (time.time() - 7200, time.time() - 7200))
    live_tmp = tmp_path / "builds" / ".tmp-writing.wasm"
    live_tmp.write_bytes(b"x")
    unrelated = tmp_path / "builds" / "notes.txt"
    unrelated.write_text("not an entry")

    assert trim(tmp_path, 1400) == 0, "under the cap: nothing goes"
    assert trim(tmp_path, 700, keep=new) == 700
    assert not oldest.exists() and not old.exists()
    assert recent.exists() and new.exists()
    assert not stale_tmp.exists() and live_tmp.exists() and unrelated.exists()
    # The entry just written stays even when it alone is over the cap.
    assert trim(tmp_path, 100, keep=new) == 200
    assert new.exists() and not recent.exists()
    assert info(tmp_path).total == 500


def test_compiling_touches_hits_and_trims_to_the_cap(
    tmp_path: Path, guests: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real compile into a capped cache: the old entry goes, the new one stays."""
    wasm = guests["tally"].wasm
    stale = _entry(tmp_path, "wasm", "stale", 10_000, age=3600)
    kept = _entry(tmp_path, "builds", "kept", 10_000, age=60)
    cache = CompileCache(tmp_path)
    # A cap below one compiled component: all older entries go, the new one stays.
    monkeypatch.setenv("THALO_CACHE_MAX_SIZE", "1MB")
    load_module(wasm, cache=cache).close()
    [artifact] = list((tmp_path / "wasm").glob("*.cwasm"))
    assert not stale.exists() and not kept.exists(), "least recently used entries were evicted"
    assert info(tmp_path).total == artifact.stat().st_size > 1_000_000

    then = time.time() - 3600
    os.utime(artifact, (then, then))
    load_module(wasm, cache=cache).close()  # a hit
    assert artifact.stat().st_mtime > then + 3000, "a hit marks the entry as used"


def _thalo(*args: str, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [THALO, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def test_cache_info_and_clear(tmp_path: Path) -> None:
    _entry(tmp_path, "builds", "a", 3000, age=10)
    _entry(tmp_path, "wasm", "b", 5000, age=5)
    env = {"THALO_CACHE_DIR": str(tmp_path), "THALO_CACHE_MAX_SIZE": "1GB"}
    shown = json.loads(_thalo("cache", "info", "--json", env=env).stdout)
    assert shown == {
        "directory": str(tmp_path),
        "entries": {"builds": 1, "wasm": 1},
        "bytes": {"builds": 3000, "wasm": 5000},
        "total_bytes": 8000,
        "max_size": 1_000_000_000,
    }
    said = _thalo("cache", "info", env=env).stdout
    assert str(tmp_path) in said and "of 1000.0 MB" in said
    bad = _thalo("cache", "info", env={**env, "THALO_CACHE_MAX_SIZE": "huge"}, code=2)
    assert "invalid size 'huge'" in bad.stderr
    cleared = json.loads(_thalo("cache", "clear", "--json", env=env).stdout)
    assert cleared == {"directory": str(tmp_path), "freed_bytes": 8000}
    assert info(tmp_path).total == 0
    assert "freed 0.0 MB" in _thalo("cache", "clear", env=env).stdout
    assert clear(tmp_path / "missing") == 0
