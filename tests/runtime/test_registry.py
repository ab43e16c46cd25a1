"""The registry on both stores: what publish checks, and how versions resolve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from components import Built
from helpers import unique

from thalo.core import metadata as keys
from thalo.errors import (
    InvalidModule,
    ModuleNotFound,
    ModuleRetired,
    SchemaError,
    StoreError,
    UnknownAggregate,
    VersionAlreadyPublished,
    VersionNotGreater,
)
from thalo.registry import Registry
from thalo.runtime import Runtime
from thalo.store import MessageStore, open_store
from thalo.wasm.entropy import fixed_entropy_library

pytestmark = pytest.mark.wasm


@pytest_asyncio.fixture
async def empty_store(empty_store_url: str) -> AsyncIterator[MessageStore]:
    async with open_store(empty_store_url) as store:
        yield store


@pytest.fixture
def registry(empty_store: MessageStore) -> Registry:
    return Registry(empty_store)


def _bump(text: str, version: str) -> str:
    return text.replace('version = "0.1.0"', f'version = "{version}"')


async def test_publish_list_resolve(registry: Registry, built: dict[str, Built]) -> None:
    counter = built["Counter"]
    record = await registry.publish(counter.schema_text, counter.wasm)
    assert (record.name, record.version, record.size) == ("Counter", "0.1.0", len(counter.wasm))
    assert list(record.schema.commands) == ["increment", "decrement"]
    assert await registry.module_bytes("Counter", "0.1.0") == counter.wasm
    again = await registry.publish(counter.schema_text, counter.wasm)
    assert again.seq == record.seq, "the same bytes and version again is a no-op"
    assert [(r.name, r.version) for r in await registry.modules()] == [("Counter", "0.1.0")]
    assert (await registry.resolve("Counter", "^0.1")).version == "0.1.0"
    with pytest.raises(ModuleNotFound, match=r"satisfies \^1.0 \(published: 0.1.0\)"):
        await registry.resolve("Counter", "^1.0")
    with pytest.raises(UnknownAggregate):
        await registry.resolve("Nope")
    assert await registry.last_seq() == record.seq


async def test_versions_must_grow(
    registry: Registry, built: dict[str, Built], counter_v2: Built
) -> None:
    counter = built["Counter"]
    await registry.publish(counter_v2.schema_text, counter_v2.wasm)
    with pytest.raises(
        VersionNotGreater, match=r"Counter 0\.1\.0.*latest published version 0\.2\.0"
    ):
        await registry.publish(counter.schema_text, counter.wasm)
    assert [r.version for r in await registry.modules("Counter")] == ["0.2.0"]


async def test_resolve_by_requirement(
    registry: Registry, built: dict[str, Built], counter_v2: Built
) -> None:
    await registry.publish(built["Counter"].schema_text, built["Counter"].wasm)
    await registry.publish(counter_v2.schema_text, counter_v2.wasm)
    assert [r.version for r in await registry.modules("Counter")] == ["0.1.0", "0.2.0"]
    assert (await registry.resolve("Counter")).version == "0.2.0"
    assert (await registry.resolve("Counter", "~0.1")).version == "0.1.0"
    assert (await registry.resolve("Counter", ">=0.1, <0.2")).version == "0.1.0"


async def test_embedded_schema_must_match(registry: Registry, built: dict[str, Built]) -> None:
    counter, todos = built["Counter"], built["Todos"]
    with pytest.raises(InvalidModule, match="different schema"):
        await registry.publish(todos.schema_text, counter.wasm)
    with pytest.raises(InvalidModule, match="different schema"):
        await registry.publish(_bump(counter.schema_text, "0.2.0"), counter.wasm)
    assert await registry.modules() == []


async def test_bad_inputs_store_nothing(registry: Registry, built: dict[str, Built]) -> None:
    counter = built["Counter"]
    with pytest.raises(SchemaError, match=r"counter\.esdl:"):
        await registry.publish("version = oops", counter.wasm, filename="counter.esdl")
    with pytest.raises(InvalidModule):
        await registry.publish(counter.schema_text, b"\0asm\x01\0\0\0")
    with pytest.raises(InvalidModule):
        await registry.publish(counter.schema_text, counter.wasm[: len(counter.wasm) // 2])
    assert await registry.modules() == []


async def test_a_publish_is_decided_before_the_component_is_looked_at(
    registry: Registry, built: dict[str, Built]
) -> None:
    """Bytes that are no component at all show that no refusal or no-op ever loads them."""
    counter, source, other = built["Counter"], "a" * 64, "b" * 64
    record = await registry.publish(counter.schema_text, counter.wasm, source_digest=source)
    assert record.source_digest == source
    assert record.to_dict()["source_digest"] == source
    again = await registry.publish(counter.schema_text, b"not a component", source_digest=source)
    assert again == record, "the same source again is a no-op, whatever the new build's bytes"
    with pytest.raises(VersionAlreadyPublished, match=r"Counter 0\.1\.0: 0\.1\.0 is already"):
        await registry.publish(counter.schema_text, b"not a component", source_digest=other)
    with pytest.raises(VersionAlreadyPublished, match="with other bytes"):
        await registry.publish(counter.schema_text, b"not a component")
    with pytest.raises(VersionNotGreater):
        await registry.publish(_bump(counter.schema_text, "0.0.9"), b"not a component")
    assert await registry.precheck(record.schema, source_digest=source) == record
    assert await registry.module_bytes("Counter", "0.1.0") == counter.wasm
    assert [r.seq for r in await registry.modules()] == [record.seq]


async def _blob_rows(store: MessageStore) -> list[tuple[str, str, str | None]]:
    async with store.transaction(read_only=True) as tx:
        rows = await tx.execute(
            "SELECT sha256, encoding, base FROM thalo_module_blobs ORDER BY stored_at"
        )
    return [(r[0], r[1], r[2]) for r in rows]


async def test_bytes_are_stored_once_compressed_and_later_ones_as_deltas(
    registry: Registry, empty_store: MessageStore, built: dict[str, Built]
) -> None:
    counter, todos = built["Counter"], built["Todos"]
    first = await registry.publish(counter.schema_text, counter.wasm)
    alone = await registry.usage()
    assert (alone.blobs, alone.raw_bytes) == (1, len(counter.wasm))
    assert alone.stored_bytes * 3 < len(counter.wasm), "zstd takes a component below a third"
    await registry.publish(counter.schema_text, counter.wasm)  # a no-op stores nothing
    assert await registry.usage() == alone

    second = await registry.publish(todos.schema_text, todos.wasm)
    both = await registry.usage()
    assert (both.blobs, both.raw_bytes) == (2, len(counter.wasm) + len(todos.wasm))
    # Another aggregate shares the Python runtime: stored as a delta on the first.
    assert await _blob_rows(empty_store) == [
        (first.sha256, "zstd", None),
        (second.sha256, "zstd-delta", first.sha256),
    ]
    assert (both.stored_bytes - alone.stored_bytes) * 8 < len(todos.wasm)
    assert await registry.module_bytes("Counter", "0.1.0") == counter.wasm
    assert await registry.module_bytes("Todos", "0.1.0") == todos.wasm


async def _counter_versions(store: MessageStore, counter: Built, counter_v2: Built) -> Registry:
    """A registry on ``store`` with Counter 0.1.0 and 0.2.0 published."""
    registry = Registry(store)
    await registry.publish(counter.schema_text, counter.wasm)
    await registry.publish(counter_v2.schema_text, counter_v2.wasm)
    return registry


async def test_a_retired_version_serves_no_new_commands_but_stays_loadable(
    empty_store: MessageStore, built: dict[str, Built], counter_v2: Built
) -> None:
    registry = await _counter_versions(empty_store, built["Counter"], counter_v2)
    async with Runtime(empty_store, module_check_interval=0) as runtime:
        entity = unique("c")
        before = await runtime.execute("Counter", entity, "increment", {"amount": 1})
        assert before[0].meta(keys.MODULE_VERSION) == "0.2.0"

        retired = await registry.retire("Counter", "0.2.0")
        assert retired.retired_at is not None and retired.to_dict()["retired_at"]
        assert (await registry.retire("Counter", "0.2.0")).retired_at == retired.retired_at
        after = await runtime.execute("Counter", entity, "increment", {"amount": 1})
        assert after[0].meta(keys.MODULE_VERSION) == "0.1.0", "the newest version not retired"
        assert after[0].data["count"] == 2, "0.1.0 replayed the history 0.2.0 wrote"

        assert (await registry.resolve("Counter")).version == "0.1.0"
        with pytest.raises(
            ModuleRetired, match=r"Counter 0\.2\.0 is retired.*not retired: 0\.1\.0"
        ):
            await registry.resolve("Counter", "^0.2")
        kept = await registry.resolve("Counter", "^0.2", retired=True)
        assert await registry.module_bytes("Counter", kept.version) == counter_v2.wasm

        await registry.retire("Counter", "0.1.0")
        with pytest.raises(ModuleRetired, match="every version is retired") as caught:
            await runtime.execute("Counter", entity, "increment", {"amount": 1})
        assert (caught.value.exit_code, caught.value.http_status) == (2, 409)
        assert [e.type for e in await empty_store.get_stream_messages(f"counter-{entity}")] == [
            "Incremented",
            "Incremented",
        ], "nothing was written by the refused command"
    with pytest.raises(ModuleNotFound, match=r"Counter 9\.9\.9 is not published"):
        await registry.retire("Counter", "9.9.9")


async def test_recheck_makes_the_next_command_see_a_retirement_at_once(
    empty_store: MessageStore, built: dict[str, Built], counter_v2: Built
) -> None:
    registry = await _counter_versions(empty_store, built["Counter"], counter_v2)
    async with Runtime(empty_store, module_check_interval=3600) as runtime:
        entity = unique("c")
        first = await runtime.execute("Counter", entity, "increment", {"amount": 1})
        assert first[0].meta(keys.MODULE_VERSION) == "0.2.0"
        await registry.retire("Counter", "0.2.0")
        cached = await runtime.execute("Counter", entity, "increment", {"amount": 1})
        assert cached[0].meta(keys.MODULE_VERSION) == "0.2.0", "within the check interval"
        runtime.modules.recheck()
        after = await runtime.execute("Counter", entity, "increment", {"amount": 1})
        assert after[0].meta(keys.MODULE_VERSION) == "0.1.0", "the retirement was seen at once"
        assert after[0].data["count"] == 3


async def test_gc_removes_only_bytes_no_version_references(
    registry: Registry, empty_store: MessageStore, built: dict[str, Built]
) -> None:
    counter, todos = built["Counter"], built["Todos"]
    first = await registry.publish(counter.schema_text, counter.wasm)
    await registry.publish(todos.schema_text, todos.wasm)
    assert await registry.gc() == (0, 0)

    # A version removed by hand (say, published by mistake): its bytes stay the
    # base of Todos' delta, so they are still referenced.
    async with empty_store.transaction() as tx:
        await tx.execute("DELETE FROM thalo_modules WHERE name = %s", ("Counter",))
    assert await registry.gc() == (0, 0)
    assert await registry.module_bytes("Todos", "0.1.0") == todos.wasm

    async with empty_store.transaction() as tx:
        await tx.execute("DELETE FROM thalo_modules WHERE name = %s", ("Todos",))
    before = await registry.usage()
    assert await registry.collect_garbage() == {
        "removed": 2,
        "freed_bytes": before.stored_bytes,
        "blobs": 0,
        "raw_bytes": 0,
        "stored_bytes": 0,
    }
    assert (await registry.usage()).blobs == 0
    # Publishing again stores the bytes anew, full (there is no base left).
    again = await registry.publish(counter.schema_text, counter.wasm)
    assert again.sha256 == first.sha256
    assert await _blob_rows(empty_store) == [(first.sha256, "zstd", None)]
    assert await registry.module_bytes("Counter", "0.1.0") == counter.wasm


_OLD_TABLE = {
    "sqlite": "CREATE TABLE thalo_modules (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL, version TEXT NOT NULL, schema TEXT NOT NULL, sha256 TEXT NOT NULL,"
    " size INTEGER NOT NULL, module BLOB NOT NULL, published_at TEXT NOT NULL,"
    " UNIQUE (name, version))",
    "postgresql": "CREATE TABLE thalo_modules (seq BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL, version TEXT NOT NULL, schema TEXT NOT NULL, sha256 TEXT NOT NULL,"
    " size BIGINT NOT NULL, module BYTEA NOT NULL, published_at TEXT NOT NULL,"
    " UNIQUE (name, version))",
}


async def test_a_registry_from_before_blobs_is_migrated(
    empty_store: MessageStore, built: dict[str, Built], tmp_path: Path
) -> None:
    """A store written by the previous release: bytes inline in thalo_modules."""
    import hashlib

    import orjson

    from thalo.esdl import parse

    counter = built["Counter"]
    schema = orjson.dumps(parse(counter.schema_text).to_json()).decode()
    sha = hashlib.sha256(counter.wasm).hexdigest()
    async with empty_store.transaction() as tx:
        await tx.execute(_OLD_TABLE[tx.dialect])
        await tx.execute(
            "INSERT INTO thalo_modules (name, version, schema, sha256, size, module, published_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                "Counter",
                "0.1.0",
                schema,
                sha,
                len(counter.wasm),
                counter.wasm,
                "2026-01-01T00:00:00+00:00",
            ),
        )
    registry = Registry(empty_store)
    [record] = await registry.modules()
    assert (record.version, record.sha256, record.source_digest, record.retired_at) == (
        "0.1.0",
        sha,
        None,
        None,
    )
    assert await registry.module_bytes("Counter", "0.1.0") == counter.wasm
    usage = await registry.usage()
    assert (usage.blobs, usage.raw_bytes) == (1, len(counter.wasm))
    with pytest.raises(StoreError, match="module"):  # the inline bytes are gone
        async with empty_store.transaction(read_only=True) as tx:
            await tx.execute("SELECT module FROM thalo_modules")


@pytest.mark.slow
async def test_ten_versions_of_bank_account_are_stored_as_deltas(
    registry: Registry, empty_store: MessageStore, bank_account_versions: list[Built]
) -> None:
    """Builds run with fixed entropy (thalo.wasm.entropy), so a version differs from the
    first in its own source and a few timestamps: a zstd delta of ~5 KB.

    Measured on this machine: 10 versions take 1.01x one (5.20 MB for 186 MB of
    components). Without fixed entropy every build differed by ~1.15 MB of noise, 3.0x.
    """
    if fixed_entropy_library() is None:
        pytest.skip("builds here have no fixed entropy (no C compiler, or not Linux)")
    stored = []
    for module in bank_account_versions:
        await registry.publish(module.schema_text, module.wasm)
        stored.append((await registry.usage()).stored_bytes)
    raw = sum(len(m.wasm) for m in bank_account_versions)
    print(
        f"\n10 versions of bank_account: {raw / 1e6:.1f} MB of components stored in "
        f"{stored[-1] / 1e6:.2f} MB, {stored[-1] / stored[0]:.2f}x one version "
        f"({stored[0] / 1e6:.2f} MB, {len(bank_account_versions[0].wasm) / stored[0]:.2f}:1)"
    )
    encodings = [encoding for _, encoding, _ in await _blob_rows(empty_store)]
    assert encodings == ["zstd"] + ["zstd-delta"] * 9
    assert stored[-1] < 1.2 * stored[0]  # the bound is 3x
    assert stored[-1] * 10 < raw
    for module in bank_account_versions[::3]:
        schema_version = module.schema_text.split('version = "')[1].split('"')[0]
        assert await registry.module_bytes("BankAccount", schema_version) == module.wasm
