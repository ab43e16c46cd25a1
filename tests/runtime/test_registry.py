"""The registry on both stores: what publish checks, and how versions resolve."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from components import Built

from thalo.errors import (
    InvalidModule,
    ModuleNotFound,
    SchemaError,
    UnknownAggregate,
    VersionNotGreater,
)
from thalo.registry import Registry
from thalo.store import open_store

pytestmark = pytest.mark.wasm


@pytest_asyncio.fixture
async def registry(empty_store_url: str) -> AsyncIterator[Registry]:
    async with open_store(empty_store_url) as store:
        yield Registry(store)


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
