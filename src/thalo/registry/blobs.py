"""Component bytes in the registry: stored once per content hash, compressed with zstd.

Table ``thalo_module_blobs`` holds each distinct component once, under the
sha256 of its bytes, as one of two encodings:

- ``zstd``: compressed on its own (a *full* blob; about 3.6:1 on a component);
- ``zstd-delta``: compressed with the bytes of a full blob as a zstd raw-content
  dictionary (zstd's "patch from"). Two builds of thalo guests share the Python
  runtime and differ mostly in the snapshot of the guest's memory, which
  componentize-py does not reproduce from build to build: a delta is about
  1.2 MB for an 18.6 MB component, whichever aggregate the base was built from.

A delta refers only to a full blob, so reading any component costs at most two
decompressions (tens of milliseconds, once per process and version). A delta
is kept when it is under an eighth of the raw size; otherwise the component is
stored full and becomes the base of later ones, so a change of runtime (a new
componentize-py) starts a new base instead of growing every delta.
"""

from __future__ import annotations

__all__ = [
    "DDL",
    "Encoded",
    "Usage",
    "collect",
    "compress",
    "decompress",
    "encode_for",
    "put",
    "read",
    "usage",
]

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import zstandard

from thalo.errors import InvalidModule, ModuleNotFound
from thalo.store import MessageStore, SqlTransaction

DDL = {
    "sqlite": """
        CREATE TABLE IF NOT EXISTS thalo_module_blobs (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            encoding TEXT NOT NULL,
            base TEXT,
            data BLOB NOT NULL,
            stored_at TEXT NOT NULL
        )""",
    "postgresql": """
        CREATE TABLE IF NOT EXISTS thalo_module_blobs (
            sha256 TEXT PRIMARY KEY,
            size BIGINT NOT NULL,
            encoding TEXT NOT NULL,
            base TEXT,
            data BYTEA NOT NULL,
            stored_at TEXT NOT NULL
        )""",
}
FULL, DELTA = "zstd", "zstd-delta"
_LEVEL = 12  # ~1.5 s for a component; levels above 12 save <10% at 5-10x the time
_DELTA_LIMIT = 8  # keep a delta when it is under 1/8 of the raw size
_MAX_WINDOW_LOG = 30


@dataclass(frozen=True, slots=True)
class Encoded:
    """A component as it is stored: its identity, raw size, encoding and stored bytes."""

    sha256: str
    size: int
    encoding: str
    base: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class Usage:
    """What the registry's bytes take: distinct components, their raw and stored sizes."""

    blobs: int
    raw_bytes: int
    stored_bytes: int

    def to_dict(self) -> dict[str, int]:
        return {
            "blobs": self.blobs,
            "raw_bytes": self.raw_bytes,
            "stored_bytes": self.stored_bytes,
        }


def _params(size: int, *, delta: bool = False) -> zstandard.ZstdCompressionParameters:
    # The window must span the dictionary too, or matches into it are lost. A delta
    # indexes the whole base (hash and chain tables of 2^24 entries, ~128 MB while
    # compressing): 2% smaller deltas than level 12's own tables, for ~0.5 s.
    window_log = min(_MAX_WINDOW_LOG, max(20, (size - 1).bit_length()))
    tables = {"hash_log": 24, "chain_log": 24} if delta else {}
    return zstandard.ZstdCompressionParameters.from_level(_LEVEL, window_log=window_log, **tables)


def _dictionary(base: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def compress(data: bytes, sha256: str, base: tuple[str, bytes] | None = None) -> Encoded:
    """Encode ``data`` as a delta against ``base`` (sha256, raw bytes) if that pays, else full."""
    if base is not None:
        base_sha, base_bytes = base
        compressor = zstandard.ZstdCompressor(
            dict_data=_dictionary(base_bytes),
            compression_params=_params(len(base_bytes) + len(data), delta=True),
        )
        delta = compressor.compress(data)
        if len(delta) * _DELTA_LIMIT <= len(data):
            return Encoded(sha256, len(data), DELTA, base_sha, delta)
    full = zstandard.ZstdCompressor(compression_params=_params(len(data))).compress(data)
    return Encoded(sha256, len(data), FULL, None, full)


def decompress(encoding: str, data: bytes, base: bytes | None = None) -> bytes:
    """The raw bytes of a stored blob (``base``: the raw bytes of a delta's base)."""
    if encoding == FULL:
        return zstandard.ZstdDecompressor(max_window_size=1 << _MAX_WINDOW_LOG).decompress(data)
    if encoding == DELTA and base is not None:
        return zstandard.ZstdDecompressor(
            dict_data=_dictionary(base), max_window_size=1 << _MAX_WINDOW_LOG
        ).decompress(data)
    raise InvalidModule(f"a stored component has an unknown encoding {encoding!r}")


async def _base(tx: SqlTransaction) -> tuple[str, bytes] | None:
    """The newest full blob some version references, decompressed: the base of new deltas."""
    rows = await tx.execute(
        "SELECT b.sha256, b.data FROM thalo_module_blobs b WHERE b.encoding = %s"
        " AND EXISTS (SELECT 1 FROM thalo_modules m WHERE m.sha256 = b.sha256)"
        " ORDER BY b.stored_at DESC LIMIT 1",
        (FULL,),
    )
    if not rows:
        return None
    sha, data = rows[0]
    return sha, await asyncio.to_thread(decompress, FULL, bytes(data))


async def _exists(tx: SqlTransaction, sha256: str) -> bool:
    rows = await tx.execute("SELECT 1 FROM thalo_module_blobs WHERE sha256 = %s", (sha256,))
    return bool(rows)


async def encode_for(store: MessageStore, data: bytes, sha256: str) -> Encoded | None:
    """Compress ``data`` for ``store`` outside any write transaction (seconds of CPU).

    None when the store holds these bytes already. The result goes to ``put``.
    """
    async with store.transaction(read_only=True) as tx:
        if await _exists(tx, sha256):
            return None
        base = await _base(tx)
    return await asyncio.to_thread(compress, data, sha256, base)


async def put(tx: SqlTransaction, encoded: Encoded | None, data: bytes) -> None:
    """Store ``encoded`` (from ``encode_for``) unless its bytes are stored already.

    If its base went away meanwhile, ``data`` is stored full instead.
    """
    sha256 = hashlib.sha256(data).hexdigest() if encoded is None else encoded.sha256
    if await _exists(tx, sha256):
        return
    if encoded is None or (encoded.base is not None and not await _exists(tx, encoded.base)):
        encoded = await asyncio.to_thread(compress, data, sha256, await _base(tx))
    await tx.execute(
        "INSERT INTO thalo_module_blobs (sha256, size, encoding, base, data, stored_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            encoded.sha256,
            encoded.size,
            encoded.encoding,
            encoded.base,
            encoded.data,
            datetime.now(UTC).isoformat(),
        ),
    )


async def read(tx: SqlTransaction, sha256: str) -> bytes:
    """The raw bytes stored under ``sha256``, checked against it (``InvalidModule`` if not)."""
    rows = await tx.execute(
        "SELECT encoding, base, data FROM thalo_module_blobs WHERE sha256 = %s", (sha256,)
    )
    if not rows:
        raise ModuleNotFound(f"no component with sha256 {sha256} is stored")
    encoding, base_sha, data = rows[0]
    base = None
    if base_sha is not None:
        base = await read(tx, str(base_sha))
    raw = await asyncio.to_thread(decompress, str(encoding), bytes(data), base)
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise InvalidModule(f"the stored component {sha256[:12]}… is corrupt")
    return raw


async def collect(tx: SqlTransaction) -> tuple[int, int]:
    """Delete blobs that no version references, directly or as a delta's base.

    Returns (blobs removed, stored bytes freed).
    """
    blobs = await tx.execute("SELECT sha256, base, LENGTH(data) FROM thalo_module_blobs")
    used = {str(r[0]) for r in await tx.execute("SELECT DISTINCT sha256 FROM thalo_modules")}
    keep = used | {str(base) for sha, base, _ in blobs if base is not None and sha in used}
    removed = [(str(sha), int(size)) for sha, _, size in blobs if sha not in keep]
    for sha, _ in removed:
        await tx.execute("DELETE FROM thalo_module_blobs WHERE sha256 = %s", (sha,))
    return len(removed), sum(size for _, size in removed)


async def usage(tx: SqlTransaction) -> Usage:
    """How many distinct components are stored, their raw size and what they take."""
    rows = await tx.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(LENGTH(data)), 0)"
        " FROM thalo_module_blobs"
    )
    count, raw, stored = rows[0]
    return Usage(int(count), int(raw), int(stored))
