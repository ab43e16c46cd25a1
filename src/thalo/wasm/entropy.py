"""Fixed build-time entropy: what makes two builds of the same guest (almost) the same bytes.

componentize-py snapshots the guest's memory after running its imports, and that
memory holds whatever randomness the interpreter drew: CPython's hash secret alone
changes the cached hash of every string and the layout of every dict. So two builds
of one source used to differ in ~1 MB of compressed noise, and every published
version cost the registry that much (``thalo.registry.blobs`` stores versions as
deltas). componentize-py offers no seed, so ``thalo build`` preloads a tiny library
(``fixed_entropy.c``) into it that answers ``getrandom``/``getentropy`` with a fixed
stream. Builds then differ only in a few hundred bytes of file timestamps, and a new
version of an aggregate costs the registry kilobytes.

The library is compiled once per machine with the C compiler at hand (``$CC``, ``cc``,
``gcc`` or ``clang``) into the cache directory, and checked before its first use. On
a platform without ``LD_PRELOAD`` (anything but Linux), without a compiler, or with
``THALO_REPRODUCIBLE_BUILDS=0``, builds run as before: correct, only larger in the
registry.

The fixed stream makes the guest's string hashing predictable. That is the price of
comparable builds; the sandbox's CPU budget bounds what a crafted payload could cost.
"""

from __future__ import annotations

__all__ = ["fixed_entropy_library", "preload_env"]

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from thalo.wasm.cachedir import default_cache_dir

_SOURCE = Path(__file__).with_name("fixed_entropy.c")
_PROBE = "import os; print(os.urandom(16).hex())"
_EXPECTED = "153b1192c3d0f568"  # the first 8 bytes of fill()'s stream, hex
_COMPILE_TIMEOUT = 120.0


def preload_env(cache_root: Path | None = None) -> dict[str, str]:
    """``{"LD_PRELOAD": library}`` to run a build with fixed entropy, or ``{}`` if unavailable."""
    library = fixed_entropy_library(cache_root)
    return {"LD_PRELOAD": str(library)} if library is not None else {}


def fixed_entropy_library(cache_root: Path | None = None) -> Path | None:
    """The compiled, checked preload library, or ``None`` where builds cannot use one."""
    if os.environ.get("THALO_REPRODUCIBLE_BUILDS", "1").strip().lower() in {"0", "false", "no"}:
        return None
    return _library((cache_root or default_cache_dir()).resolve())


@cache
def _library(cache_root: Path) -> Path | None:
    if not sys.platform.startswith("linux"):
        return None
    source = _SOURCE.read_bytes()
    tag = hashlib.sha256(source + platform.machine().encode()).hexdigest()[:16]
    target = cache_root / "toolchain" / f"fixed-entropy-{tag}.so"
    if target.is_file():
        return target
    compiler = _compiler()
    if compiler is None:
        return None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".so")
        os.close(fd)
    except OSError:
        return None  # a read-only cache: plain builds
    try:
        argv = [compiler, "-O2", "-shared", "-fPIC", "-o", tmp, str(_SOURCE)]
        made = subprocess.run(argv, capture_output=True, timeout=_COMPILE_TIMEOUT, check=False)
        if made.returncode != 0 or not _works(Path(tmp)):
            return None
        os.replace(tmp, target)
        return target
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _compiler() -> str | None:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def _works(library: Path) -> bool:
    """Whether a process preloaded with ``library`` draws the fixed stream."""
    env = {**os.environ, "LD_PRELOAD": str(library)}
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and probe.stdout.strip().startswith(_EXPECTED)
