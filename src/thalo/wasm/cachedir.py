"""The local cache directory (``~/.cache/thalo``): a size cap with least-recently-used eviction.

It holds build outputs (``builds/*.wasm``, ~19 MB each) and compiled components
(``wasm/*.cwasm``, ~35 MB each), all named by content hash, so any entry can
be dropped: the next use rebuilds or recompiles it. Every use of an entry
touches its modification time; every write trims the directory to
``$THALO_CACHE_MAX_SIZE`` (default 2 GB) by deleting the entries used least
recently, never the one just written.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_SIZE",
    "CacheInfo",
    "clear",
    "default_cache_dir",
    "info",
    "max_size",
    "parse_size",
    "touch",
    "trim",
]

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from thalo.errors import UsageError

DEFAULT_MAX_SIZE = 2 * 1000**3
_KINDS = {"builds": "*.wasm", "wasm": "*.cwasm"}
_STALE_TEMP_SECONDS = 3600.0  # a temporary file this old belongs to a writer that died
_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
    "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
    "tib": 1024**4,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def default_cache_dir() -> Path:
    """``$THALO_CACHE_DIR`` if set, else ``~/.cache/thalo``."""
    configured = os.environ.get("THALO_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "thalo"


def parse_size(text: str) -> int:
    """Bytes from ``2GB``, ``500 MB``, ``1.5GiB`` or a plain number; ``UsageError`` otherwise."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"invalid size {text!r}: give bytes or a number with a unit, e.g. 2GB, 500MB, 1.5GiB"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def max_size() -> int:
    """The cap: ``$THALO_CACHE_MAX_SIZE`` if set (``UsageError`` if malformed), else 2 GB."""
    configured = os.environ.get("THALO_CACHE_MAX_SIZE")
    return DEFAULT_MAX_SIZE if not configured else parse_size(configured)


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """What the cache directory holds: entries and bytes per kind, and the cap."""

    directory: Path
    entries: dict[str, int]
    bytes: dict[str, int]
    max_size: int

    @property
    def total(self) -> int:
        return sum(self.bytes.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "entries": self.entries,
            "bytes": self.bytes,
            "total_bytes": self.total,
            "max_size": self.max_size,
        }


def _entries(root: Path) -> list[tuple[Path, str, int, float]]:
    """(path, kind, size, last use) of every entry; files vanishing meanwhile are skipped."""
    found = []
    for kind, pattern in _KINDS.items():
        directory = root / kind
        if not directory.is_dir():
            continue
        for path in directory.glob(pattern):
            if path.name.startswith("."):
                continue  # a temporary file being written (pathlib's * matches dot files)
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((path, kind, stat.st_size, stat.st_mtime))
    return found


def touch(path: Path) -> None:
    """Mark an entry as just used (its modification time), so eviction keeps it longest."""
    try:
        os.utime(path)
    except OSError:
        return  # read-only or just evicted: only the eviction order suffers


def trim(root: Path | None = None, limit: int | None = None, *, keep: Path | None = None) -> int:
    """Delete least recently used entries until the cache fits ``limit``; bytes freed.

    ``keep`` (the entry just written or used) is never deleted, even if it alone
    is over the limit. Also removes temporary files writers left behind.
    """
    root = root if root is not None else default_cache_dir()
    limit = limit if limit is not None else max_size()
    now = time.time()
    for kind in _KINDS:
        for tmp in (root / kind).glob(".tmp-*"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TEMP_SECONDS:
                    tmp.unlink()
            except OSError:
                continue
    entries = _entries(root)
    total = sum(size for _, _, size, _ in entries)
    freed = 0
    for path, _, size, _ in sorted(entries, key=lambda e: e[3]):
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass  # another process evicted it first
        except OSError:
            continue
        total -= size
        freed += size
    return freed


def info(root: Path | None = None) -> CacheInfo:
    """Entries and bytes per kind (``builds``, ``wasm``) and the configured cap."""
    root = root if root is not None else default_cache_dir()
    entries = dict.fromkeys(_KINDS, 0)
    sizes = dict.fromkeys(_KINDS, 0)
    for _, kind, size, _ in _entries(root):
        entries[kind] += 1
        sizes[kind] += size
    return CacheInfo(root, entries, sizes, max_size())


def clear(root: Path | None = None) -> int:
    """Delete every entry (and temporary file); bytes freed."""
    root = root if root is not None else default_cache_dir()
    freed = 0
    for path, _, size, _ in _entries(root):
        try:
            path.unlink()
        except OSError:
            continue
        freed += size
    for kind in _KINDS:
        for tmp in (root / kind).glob(".tmp-*"):
            tmp.unlink(missing_ok=True)
    return freed
