"""``thalo.client.AsyncClient``: the asyncio twin, against the real ``thalo serve``."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
import pytest_asyncio
from helpers import unique
from serving import Served, free_port, serving

from thalo.client import AsyncClient, Client, CommandResult
from thalo.errors import (
    CommandRejected,
    CommandTimeout,
    Forbidden,
    ModuleNotFound,
    ModuleRetired,
    PayloadInvalid,
    ServerUnavailable,
    Unauthorized,
    UnknownAggregate,
    UnknownCommand,
    WrongExpectedVersion,
)

pytestmark = pytest.mark.wasm


@pytest_asyncio.fixture
async def aclient(server: Served) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url) as c:
        yield c


def test_the_twins_have_the_same_methods_and_signatures() -> None:
    public = {n for n in vars(Client) if not n.startswith("_")} - {"close"}
    assert public == {n for n in vars(AsyncClient) if not n.startswith("_")} - {"close"}
    for name in public:
        sync, twin = inspect.signature(getattr(Client, name)), getattr(AsyncClient, name)
        assert list(sync.parameters) == list(inspect.signature(twin).parameters), name
        assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin), name


async def test_execute_idempotency_and_expected_version(aclient: AsyncClient) -> None:
    entity, key = unique("c"), unique("cmd")
    first = await aclient.execute(
        "Counter", entity, "increment", {"amount": 2}, command_id=key, expected_version=-1
    )
    assert isinstance(first, CommandResult)
    assert (first.version, first.duplicate, first.events[0].data["count"]) == (0, False, 2)
    again = await aclient.execute("Counter", entity, "increment", {"amount": 2}, command_id=key)
    assert again.duplicate and again.events == first.events
    with pytest.raises(WrongExpectedVersion) as stale:
        await aclient.execute("Counter", entity, "increment", {"amount": 1}, expected_version=5)
    assert (stale.value.expected, stale.value.actual) == (5, 0)


async def test_errors_are_the_runtime_s_classes(aclient: AsyncClient) -> None:
    entity = unique("c")
    with pytest.raises(CommandRejected) as rejected:
        await aclient.execute("Counter", entity, "decrement", {"amount": -1})
    assert rejected.value.command == "decrement" and rejected.value.entity_id == entity
    with pytest.raises(PayloadInvalid) as invalid:
        await aclient.execute("Counter", entity, "increment", {})
    assert invalid.value.violations
    with pytest.raises(UnknownAggregate):
        await aclient.execute("Nope", entity, "increment")
    with pytest.raises(UnknownCommand):
        await aclient.execute("Counter", entity, "launch")


async def test_submit_and_wait(aclient: AsyncClient) -> None:
    entity = unique("c")
    submission = await aclient.submit("Counter", entity, "increment", {"amount": 3})
    result = await aclient.wait(submission, timeout=60)
    assert (result.aggregate, result.entity_id, result.command) == ("Counter", entity, "increment")
    assert [m.data["count"] for m in result.events] == [3]


async def test_wait_times_out_without_a_runner(private_store: str) -> None:
    with serving(private_store, "--no-runner", capture=True) as server:
        async with AsyncClient(server.url) as client:
            submission = await client.submit("Counter", unique("c"), "increment", {"amount": 1})
            with pytest.raises(CommandTimeout):
                await client.wait(submission, timeout=0.5)


async def test_reads(aclient: AsyncClient) -> None:
    entity = unique("c")
    results = [
        await aclient.execute("Counter", entity, "increment", {"amount": n}) for n in (1, 2, 3)
    ]
    assert (await aclient.state("Counter", entity)).state["count"] == 6
    assert (await aclient.state("Counter", entity, at_position=0)).state["count"] == 1
    at = results[1].events[0].time
    assert (await aclient.state("Counter", entity, at_time=at)).version == 1
    page = await aclient.stream(f"counter-{entity}", 1, 1)
    assert [m.position for m in page] == [1]
    start = results[0].events[0].global_position
    category = await aclient.category("counter", start, 1000)
    assert [m.position for m in category if m.stream_name == f"counter-{entity}"] == [0, 1, 2]
    assert ("Counter", "0.1.0") in {(r["name"], r["version"]) for r in await aclient.modules()}
    assert (await aclient.health())["status"] == "ok"
    assert (await aclient.ready())["status"] == "ready"


async def test_subscribe_follows_live(aclient: AsyncClient) -> None:
    entity = unique("c")
    await aclient.execute("Counter", entity, "increment", {"amount": 1})

    async def later() -> None:
        await asyncio.sleep(0.3)
        await aclient.execute("Counter", entity, "increment", {"amount": 1})

    task = asyncio.create_task(later())
    got = []
    async with aclosing(aclient.subscribe(f"counter-{entity}", position=0)) as feed:
        async for m in feed:
            got.append(m)
            if len(got) == 2:
                break
    await task
    assert [(m.position, m.data["count"]) for m in got] == [(0, 1), (1, 2)]


async def test_publish_needs_the_admin_token(private_store: str, built: dict[str, Any]) -> None:
    counter = built["Counter"]
    with serving(private_store, capture=True) as server:
        async with AsyncClient(server.url) as anonymous:
            with pytest.raises((Unauthorized, Forbidden)):
                await anonymous.publish(counter.schema_text, counter.wasm)
        async with AsyncClient(server.url, server.admin_token) as admin:
            record = await admin.publish(counter.schema_text, counter.wasm)  # the same again
            assert (record["name"], record["version"]) == ("Counter", "0.1.0")


async def test_retire_and_gc_with_the_admin_token(private_store: str) -> None:
    with serving(private_store, capture=True) as server:
        async with AsyncClient(server.url, "not-the-admin") as stranger:
            with pytest.raises(Unauthorized):
                await stranger.retire("Counter", "0.1.0")
            with pytest.raises(Unauthorized):
                await stranger.gc()
        async with AsyncClient(server.url, server.admin_token) as admin:
            assert (await admin.modules("Counter"))[0]["retired_at"] is None, "not retired"
            entity = unique("c")
            await admin.execute("Counter", entity, "increment", {"amount": 1})
            record = await admin.retire("Counter", "0.1.0")
            assert (record["version"], await admin.modules("Counter")) == ("0.1.0", [record])
            with pytest.raises(ModuleRetired):
                await admin.execute("Counter", entity, "increment", {"amount": 1})
            with pytest.raises(ModuleNotFound):
                await admin.retire("Nope", "0.1.0")
            figures = await admin.gc()
            assert (figures["removed"], figures["freed_bytes"]) == (0, 0)
            assert figures["blobs"] >= 6


async def test_nothing_listening() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncClient(url) as client:
        with pytest.raises(ServerUnavailable) as down:
            await client.state("Counter", "c-1")
        assert url in down.value.message
        with pytest.raises(ServerUnavailable):
            async with aclosing(client.subscribe("counter", give_up_after=0.3)) as feed:
                await anext(feed)
