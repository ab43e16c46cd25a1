"""The module registry: published aggregate components, by name and semantic version.

Modules live in the store's own database (``thalo_modules``: a table in the
SQLite file, or in the ``thalo`` schema beside Message DB), so every runtime
process sharing a store sees the same modules; their bytes are stored once per
content hash, compressed, in ``thalo_module_blobs`` (``thalo.registry.blobs``).
A retired version serves no new commands but stays loadable for replaying the
history it wrote. A publish is checked before it
is stored: the version is new (checked first, so a refusal costs milliseconds),
the ESDL compiles, the bytes are a component of thalo's world, and the schema
embedded in the component is the one being published. A version is immutable:
publishing it again with the same bytes, or built from the same source (its
``source_digest``, see ``thalo.wasm.build.source_digest``), is a no-op; anything
else under a published version is refused.
"""

from __future__ import annotations

__all__ = ["ModuleRecord", "Registry", "check_version"]

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from thalo.errors import (
    InvalidModule,
    ModuleNotFound,
    ModuleRetired,
    SchemaError,
    ThaloError,
    UnknownAggregate,
    UpcastFailed,
    VersionAlreadyPublished,
    VersionNotGreater,
)
from thalo.esdl import Schema, parse
from thalo.registry import blobs
from thalo.registry.compatibility import (
    Compatibility,
    OldEvent,
    check_compatibility,
    old_events,
)
from thalo.registry.requirement import Requirement, Version, parse_version
from thalo.store import MessageStore, SqlTransaction

if TYPE_CHECKING:
    from thalo.wasm import WasmModule

_DDL = {
    "sqlite": """
        CREATE TABLE IF NOT EXISTS thalo_modules (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            schema TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            published_at TEXT NOT NULL,
            source_digest TEXT,
            retired_at TEXT,
            UNIQUE (name, version)
        )""",
    "postgresql": """
        CREATE TABLE IF NOT EXISTS thalo_modules (
            seq BIGSERIAL PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            schema TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size BIGINT NOT NULL,
            published_at TEXT NOT NULL,
            source_digest TEXT,
            retired_at TEXT,
            UNIQUE (name, version)
        )""",
}
# Columns added since the table first shipped, created on stores made before them.
_ADDED_COLUMNS = {"source_digest": "TEXT", "retired_at": "TEXT"}
_COLUMNS = "seq, name, version, schema, sha256, size, published_at, source_digest, retired_at"


@dataclass(frozen=True, slots=True)
class ModuleRecord:
    """One published module version (without its bytes: see ``Registry.module_bytes``)."""

    seq: int
    name: str
    version: str
    schema: Schema
    sha256: str
    size: int
    published_at: datetime
    source_digest: str | None = None
    retired_at: datetime | None = None

    @property
    def semver(self) -> Version:
        return parse_version(self.version)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for ``--json`` and the HTTP API."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "published_at": self.published_at.isoformat(),
            "source_digest": self.source_digest,
            "retired_at": None if self.retired_at is None else self.retired_at.isoformat(),
            "commands": list(self.schema.commands),
            "events": list(self.schema.events),
        }


def _record(row: tuple[Any, ...]) -> ModuleRecord:
    seq, name, version, schema_json, sha256, size, published_at, source_digest, retired = row
    return ModuleRecord(
        seq=int(seq),
        name=name,
        version=version,
        schema=Schema.from_json(orjson.loads(schema_json)),
        sha256=sha256,
        size=int(size),
        published_at=datetime.fromisoformat(published_at),
        source_digest=source_digest,
        retired_at=None if retired is None else datetime.fromisoformat(retired),
    )


class Registry:
    """Publish, list and resolve aggregate modules kept in ``store``'s database."""

    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self._ready = False

    async def ensure_schema(self) -> None:
        """Create the modules table if missing; idempotent and cheap after the first call."""
        if self._ready:
            return
        async with self._store.transaction() as tx:
            await _lock_name(tx, "thalo_modules")
            await tx.execute(_DDL[tx.dialect])
            await tx.execute(blobs.DDL[tx.dialect])
            present = await _columns(tx)
            for column, kind in _ADDED_COLUMNS.items():
                if column not in present:
                    await tx.execute(f"ALTER TABLE thalo_modules ADD COLUMN {column} {kind}")
            if "module" in present:
                await _move_bytes_to_blobs(tx)
        self._ready = True

    async def precheck(
        self, schema: Schema, *, sha256: str | None = None, source_digest: str | None = None
    ) -> ModuleRecord | None:
        """Decide a publish before anything expensive: the existing record when it is a no-op.

        Returns None when the version may be published. Raises ``VersionNotGreater``
        or ``VersionAlreadyPublished`` (see ``check_version``).
        """
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            return await self._decide(tx, schema, sha256, source_digest)

    async def publish(
        self,
        schema_text: str,
        wasm: bytes,
        *,
        filename: str = "<esdl>",
        source_digest: str | None = None,
        allow_breaking: bool = False,
    ) -> ModuleRecord:
        """Check and store a module version; returns its record.

        ``source_digest`` identifies the source the bytes were built from
        (``thalo.wasm.build.source_digest``), so that the same source published
        again is a no-op although componentize-py's output differs per build.
        Raises ``SchemaError`` (the ESDL does not compile), ``VersionNotGreater``,
        ``VersionAlreadyPublished``, ``IncompatibleSchema`` (its events would not
        read what the store holds, unless ``allow_breaking``) — all before the
        component is looked at — and ``InvalidModule`` (not a component of thalo's
        world, or its embedded schema differs from ``schema_text``).
        """
        schema = parse(schema_text, filename)
        sha256 = hashlib.sha256(wasm).hexdigest()
        existing = await self.precheck(schema, sha256=sha256, source_digest=source_digest)
        if existing is not None:
            return existing
        published = [r.schema for r in await self.modules(schema.name)]
        compatibility = await check_compatibility(self._store, schema, published)
        compatibility.require(allow_breaking=allow_breaking)
        old = [] if allow_breaking else await old_events(self._store, schema, published)
        against = compatibility.diff.old_version if compatibility.diff is not None else ""
        await asyncio.to_thread(_check_component, wasm, sha256, schema, old, against)
        encoded = await blobs.encode_for(self._store, wasm, sha256)  # seconds: outside the lock
        now = datetime.now(UTC)
        async with self._store.transaction() as tx:
            await _lock_name(tx, schema.name)
            # Again under the lock: another publish may have won since the precheck.
            existing = await self._decide(tx, schema, sha256, source_digest)
            if existing is not None:
                return existing
            schema_json = orjson.dumps(schema.to_json()).decode()
            await blobs.put(tx, encoded, wasm)
            await tx.execute(
                "INSERT INTO thalo_modules (name, version, schema, sha256, size,"
                " published_at, source_digest) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    schema.name,
                    schema.version,
                    schema_json,
                    sha256,
                    len(wasm),
                    now.isoformat(),
                    source_digest,
                ),
            )
            return await self._one(tx, schema.name, schema.version)

    async def _decide(
        self, tx: SqlTransaction, schema: Schema, sha256: str | None, source_digest: str | None
    ) -> ModuleRecord | None:
        rows = await tx.execute(
            "SELECT version, sha256, source_digest FROM thalo_modules WHERE name = %s",
            (schema.name,),
        )
        same = check_version(
            schema.name,
            schema.version,
            [(r[0], r[1], r[2]) for r in rows],
            sha256=sha256,
            source_digest=source_digest,
        )
        return None if same is None else await self._one(tx, schema.name, same)

    async def compatibility(self, schema: Schema) -> Compatibility:
        """How ``schema`` fares against the published versions of its aggregate and the
        events stored (registry/compatibility.py): fast, no component involved."""
        published = [r.schema for r in await self.modules(schema.name)]
        return await check_compatibility(self._store, schema, published)

    @staticmethod
    async def _one(tx: SqlTransaction, name: str, version: str) -> ModuleRecord:
        rows = await tx.execute(
            f"SELECT {_COLUMNS} FROM thalo_modules WHERE name = %s AND version = %s",
            (name, version),
        )
        return _record(rows[0])

    async def modules(self, name: str | None = None) -> list[ModuleRecord]:
        """Every published version (of ``name`` when given), by name then version."""
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            if name is None:
                rows = await tx.execute(f"SELECT {_COLUMNS} FROM thalo_modules")
            else:
                rows = await tx.execute(
                    f"SELECT {_COLUMNS} FROM thalo_modules WHERE name = %s", (name,)
                )
        records = [_record(r) for r in rows]
        return sorted(records, key=lambda r: (r.name, r.semver))

    async def resolve(
        self, name: str, requirement: str = "*", *, retired: bool = False
    ) -> ModuleRecord:
        """The greatest version of ``name`` satisfying ``requirement``: what new commands use.

        Retired versions are left out unless ``retired`` (replaying history).
        Raises ``UnknownAggregate`` when nothing of that name is published,
        ``ModuleRetired`` when only retired versions satisfy the requirement and
        ``ModuleNotFound`` when no published version does.
        """
        req = Requirement.parse(requirement)
        records = await self.modules(name)
        if not records:
            raise UnknownAggregate(name)
        usable = records if retired else [r for r in records if r.retired_at is None]
        best = req.best([r.semver for r in usable])
        if best is None:
            any_best = req.best([r.semver for r in records])
            if any_best is not None:
                live = [r.version for r in usable]
                raise ModuleRetired(name, str(any_best), live)
            versions = ", ".join(r.version for r in records)
            raise ModuleNotFound(
                f"no published version of {name} satisfies {req} (published: {versions})"
            )
        return next(r for r in usable if r.semver == best)

    async def module_bytes(self, name: str, version: str) -> bytes:
        """The component bytes of one published version (retired or not)."""
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            rows = await tx.execute(
                "SELECT sha256 FROM thalo_modules WHERE name = %s AND version = %s",
                (name, version),
            )
            if not rows:
                raise ModuleNotFound(f"{name} {version} is not published")
            return await blobs.read(tx, str(rows[0][0]))

    async def retire(self, name: str, version: str) -> ModuleRecord:
        """Stop new commands on ``name`` ``version``; it stays loadable for history replay.

        Idempotent. Raises ``ModuleNotFound`` when that version is not published.
        """
        await self.ensure_schema()
        now = datetime.now(UTC).isoformat()
        async with self._store.transaction() as tx:
            await tx.execute(
                "UPDATE thalo_modules SET retired_at = %s"
                " WHERE name = %s AND version = %s AND retired_at IS NULL",
                (now, name, version),
            )
            rows = await tx.execute(
                f"SELECT {_COLUMNS} FROM thalo_modules WHERE name = %s AND version = %s",
                (name, version),
            )
        if not rows:
            raise ModuleNotFound(f"{name} {version} is not published")
        return _record(rows[0])

    async def gc(self) -> tuple[int, int]:
        """Remove component bytes no version references; (blobs removed, bytes freed)."""
        await self.ensure_schema()
        async with self._store.transaction() as tx:
            return await blobs.collect(tx)

    async def collect_garbage(self) -> dict[str, int]:
        """``gc``, then ``usage``: the figures ``thalo modules gc`` and ``POST /modules/gc``
        report (``removed``, ``freed_bytes``, ``blobs``, ``raw_bytes``, ``stored_bytes``)."""
        removed, freed = await self.gc()
        usage = await self.usage()
        return {"removed": removed, "freed_bytes": freed, **usage.to_dict()}

    async def usage(self) -> blobs.Usage:
        """Distinct components stored, their raw size and the bytes they take."""
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            return await blobs.usage(tx)

    async def last_seq(self) -> int:
        """The sequence number of the newest publish (0 when none)."""
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            rows = await tx.execute("SELECT MAX(seq) FROM thalo_modules")
        return int(rows[0][0] or 0)

    async def revision(self) -> tuple[int, int]:
        """Changes with every publish and every retirement: cheap change detection."""
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            rows = await tx.execute("SELECT MAX(seq), COUNT(retired_at) FROM thalo_modules")
        return int(rows[0][0] or 0), int(rows[0][1] or 0)


def check_version(
    name: str,
    version: str,
    published: Iterable[tuple[str, str, str | None]],
    *,
    sha256: str | None = None,
    source_digest: str | None = None,
) -> str | None:
    """Whether ``name`` ``version`` may be published next to ``published`` versions.

    ``published`` holds (version, sha256, source_digest) of each published
    version. Returns the published version string when this publish is a no-op
    (the same bytes, or the same source digest, under that version), None when
    the version is new and greater than all. Raises ``VersionAlreadyPublished``
    for other bytes under a published version and ``VersionNotGreater`` for a
    version below the latest. Pure, so a client can decide before it builds.
    """
    wanted = parse_version(version)
    versions = []
    for text, published_sha, published_digest in published:
        semver = parse_version(text)
        versions.append(semver)
        if semver != wanted:
            continue
        if sha256 is not None and sha256 == published_sha:
            return text
        if source_digest is not None and source_digest == published_digest:
            return text
        if published_digest is not None and source_digest is not None:
            reason = "built from other source"
        elif sha256 is not None:
            reason = f"with other bytes (sha256 {published_sha[:12]}…)"
        else:
            reason = f"from a component of unrecorded source (sha256 {published_sha[:12]}…)"
        raise VersionAlreadyPublished(name, version, reason)
    if versions and wanted <= max(versions):
        raise VersionNotGreater(name, version, str(max(versions)))
    return None


async def _move_bytes_to_blobs(tx: SqlTransaction) -> None:
    """Migrate a registry from before blobs: each version's inline bytes into blobs.

    Runs once, under the schema lock; compressing takes a second or two a version.
    """
    rows = await tx.execute("SELECT seq, module FROM thalo_modules ORDER BY seq")
    for _seq, module in rows:
        await blobs.put(tx, None, bytes(module))
    await tx.execute("ALTER TABLE thalo_modules DROP COLUMN module")


async def _columns(tx: SqlTransaction) -> set[str]:
    if tx.dialect == "sqlite":
        rows = await tx.execute("SELECT name FROM pragma_table_info('thalo_modules')")
    else:
        rows = await tx.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'thalo_modules' AND table_schema = current_schema()"
        )
    return {str(r[0]) for r in rows}


async def _lock_name(tx: SqlTransaction, name: str) -> None:
    # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL needs a lock so
    # two concurrent publishes of one aggregate cannot both pass the version check.
    if tx.dialect == "postgresql":
        await tx.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"thalo.registry:{name}",))


def _check_component(
    wasm: bytes, sha256: str, schema: Schema, old: list[OldEvent], against: str
) -> None:
    """The component is thalo's, built from ``schema``, and reads the ``old`` events."""
    from thalo.wasm import load_module

    module = load_module(wasm, sha256=sha256, max_instances=1)
    try:
        _check_embedded(module.schema, schema)
        for event in old:
            _check_upcast(module, schema, event, against)
    finally:
        module.close()


def _check_upcast(module: WasmModule, schema: Schema, event: OldEvent, against: str) -> None:
    """Replays ``event`` (an older schema's) through the new module on a fresh entity:
    ``UpcastFailed`` if it does not decode. Other failures (its ``apply`` expecting
    earlier events, say) say nothing about upcasting and pass."""
    from thalo.wasm import GuestDecodeFailed

    entity = module.entity("thalo-publish-upcast-check")
    body = {"type": event.event_type, "data": event.data, "schemaVersion": event.version}
    try:
        entity.apply([body])
    except GuestDecodeFailed as exc:
        raise UpcastFailed(
            schema.name,
            schema.version,
            against,
            event.event_type,
            event.version,
            event.origin,
            exc.message,
        ) from None
    except ThaloError:
        pass
    finally:
        entity.close()


def _check_embedded(embedded_text: str, schema: Schema) -> None:
    try:
        embedded = parse(embedded_text, "<embedded schema>")
    except SchemaError as exc:
        raise InvalidModule(f"the schema embedded in the module does not compile: {exc}") from exc
    if embedded != schema:
        raise InvalidModule(
            f"the module was built from a different schema ({embedded.name} "
            f"{embedded.version}) than the one being published ({schema.name} "
            f"{schema.version}): rebuild it with `thalo build`"
        )
