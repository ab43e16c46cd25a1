"""The module registry: published aggregate components, by name and semantic version.

Modules live in the store's own database (``thalo_modules``: a table in the
SQLite file, or in the ``thalo`` schema beside Message DB), so every runtime
process sharing a store sees the same modules. A publish is checked before it
is stored: the ESDL compiles, the bytes are a component of thalo's world, the
schema embedded in the component is the one being published, and the version
is greater than every published version of that aggregate.
"""

from __future__ import annotations

__all__ = ["ModuleRecord", "Registry"]

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from thalo.errors import (
    InvalidModule,
    ModuleNotFound,
    SchemaError,
    UnknownAggregate,
    VersionNotGreater,
)
from thalo.esdl import Schema, parse
from thalo.registry.compatibility import Compatibility, check_compatibility
from thalo.registry.requirement import Requirement, Version, parse_version
from thalo.store import MessageStore, SqlTransaction

_DDL = {
    "sqlite": """
        CREATE TABLE IF NOT EXISTS thalo_modules (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            schema TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            module BLOB NOT NULL,
            published_at TEXT NOT NULL,
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
            module BYTEA NOT NULL,
            published_at TEXT NOT NULL,
            UNIQUE (name, version)
        )""",
}
_COLUMNS = "seq, name, version, schema, sha256, size, published_at"


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
            "commands": list(self.schema.commands),
            "events": list(self.schema.events),
        }


def _record(row: tuple[Any, ...]) -> ModuleRecord:
    seq, name, version, schema_json, sha256, size, published_at = row
    return ModuleRecord(
        seq=int(seq),
        name=name,
        version=version,
        schema=Schema.from_json(orjson.loads(schema_json)),
        sha256=sha256,
        size=int(size),
        published_at=datetime.fromisoformat(published_at),
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
            await tx.execute(_DDL[tx.dialect])
        self._ready = True

    async def publish(
        self,
        schema_text: str,
        wasm: bytes,
        *,
        filename: str = "<esdl>",
        allow_breaking: bool = False,
    ) -> ModuleRecord:
        """Check and store a module version; returns its record.

        Raises ``SchemaError`` (the ESDL does not compile), ``InvalidModule`` (not a
        component of thalo's world, or its embedded schema differs from
        ``schema_text``), ``VersionNotGreater``, and ``IncompatibleSchema`` (its
        events would not read what the store holds, unless ``allow_breaking``).
        """
        schema = parse(schema_text, filename)
        version = parse_version(schema.version)
        await self.ensure_schema()
        (await self.compatibility(schema)).require(allow_breaking=allow_breaking)
        sha256 = hashlib.sha256(wasm).hexdigest()
        await asyncio.to_thread(_check_component, wasm, sha256, schema)
        now = datetime.now(UTC)
        async with self._store.transaction() as tx:
            await _lock_name(tx, schema.name)
            rows = await tx.execute(
                "SELECT version, sha256 FROM thalo_modules WHERE name = %s", (schema.name,)
            )
            if (str(version), sha256) in {(r[0], r[1]) for r in rows}:
                # The very same module again: publishing is idempotent.
                return await self._one(tx, schema.name, str(version))
            published = [parse_version(r[0]) for r in rows]
            if published and version <= max(published):
                raise VersionNotGreater(schema.name, str(version), str(max(published)))
            schema_json = orjson.dumps(schema.to_json()).decode()
            await tx.execute(
                "INSERT INTO thalo_modules (name, version, schema, sha256, size, module,"
                " published_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (schema.name, str(version), schema_json, sha256, len(wasm), wasm, now.isoformat()),
            )
            return await self._one(tx, schema.name, str(version))

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

    async def resolve(self, name: str, requirement: str = "*") -> ModuleRecord:
        """The greatest version of ``name`` satisfying ``requirement``.

        Raises ``UnknownAggregate`` when nothing of that name is published and
        ``ModuleNotFound`` when no published version satisfies the requirement.
        """
        req = Requirement.parse(requirement)
        records = await self.modules(name)
        if not records:
            raise UnknownAggregate(name)
        best = req.best([r.semver for r in records])
        if best is None:
            versions = ", ".join(r.version for r in records)
            raise ModuleNotFound(
                f"no published version of {name} satisfies {req} (published: {versions})"
            )
        return next(r for r in records if r.semver == best)

    async def module_bytes(self, name: str, version: str) -> bytes:
        """The component bytes of one published version."""
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            rows = await tx.execute(
                "SELECT module FROM thalo_modules WHERE name = %s AND version = %s",
                (name, version),
            )
        if not rows:
            raise ModuleNotFound(f"{name} {version} is not published")
        return bytes(rows[0][0])

    async def last_seq(self) -> int:
        """The sequence number of the newest publish (0 when none): cheap change detection."""
        await self.ensure_schema()
        async with self._store.transaction(read_only=True) as tx:
            rows = await tx.execute("SELECT MAX(seq) FROM thalo_modules")
        return int(rows[0][0] or 0)


async def _lock_name(tx: SqlTransaction, name: str) -> None:
    # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL needs a lock so
    # two concurrent publishes of one aggregate cannot both pass the version check.
    if tx.dialect == "postgresql":
        await tx.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"thalo.registry:{name}",))


def _check_component(wasm: bytes, sha256: str, schema: Schema) -> None:
    from thalo.wasm import load_module

    module = load_module(wasm, sha256=sha256, max_instances=1)
    try:
        try:
            embedded = parse(module.schema, "<embedded schema>")
        except SchemaError as exc:
            raise InvalidModule(
                f"the schema embedded in the module does not compile: {exc}"
            ) from exc
        if embedded != schema:
            raise InvalidModule(
                f"the module was built from a different schema ({embedded.name} "
                f"{embedded.version}) than the one being published ({schema.name} "
                f"{schema.version}): rebuild it with `thalo build`"
            )
    finally:
        module.close()
