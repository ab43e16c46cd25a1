"""The relay against real brokers and real stores: NATS JetStream and Redis Streams.

The shared brokers (NATS on 127.0.0.1:4222, Redis on 127.0.0.1:6379) carry the
ordinary tests, each with its own category (so its own subjects, JetStream
stream and Redis key), removed afterwards. The broker-restart tests start
their own broker process on a free port, kill it mid-run and start it again on
the same port with the same storage directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from helpers import unique

from thalo.consumer.consumer import POSITION_TYPE
from thalo.consumer.relay import (
    Broker,
    NatsBroker,
    RedisBroker,
    Relay,
    nats_stream_name,
    redis_key,
)
from thalo.core import Message, NewMessage, position_stream_name
from thalo.store import MessageStore, open_store

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
THALO = str(Path(sys.executable).with_name("thalo"))
TYPES = ("Incremented", "Decremented")


# --- stores -----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
def relay_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest_asyncio.fixture
async def store(relay_store_url: str) -> AsyncIterator[MessageStore]:
    async with open_store(relay_store_url) as opened:
        yield opened


async def write_events(store: MessageStore, category: str, count: int, *, start: int = 0) -> None:
    """``count`` events over three streams of ``category``, alternating two types."""
    for first in range(start, start + count, 50):
        n = min(50, start + count - first)
        stream = f"{category}-c{(first // 50) % 3}"
        batch = [NewMessage(TYPES[i % 2], {"n": i}, {"k": "v"}) for i in range(first, first + n)]
        await store.write_messages(stream, batch)


async def category_messages(store: MessageStore, category: str) -> list[Message]:
    out: list[Message] = []
    for _ in range(1000):  # bounded
        batch = await store.get_category_messages(
            category, out[-1].global_position + 1 if out else 1
        )
        if not batch:
            break
        out += batch
    return out


async def recorded_position(store: MessageStore, category: str, name: str) -> int | None:
    last = await store.get_last_stream_message(position_stream_name(category, name), POSITION_TYPE)
    return None if last is None else int(last.data["position"])


# --- brokers ----------------------------------------------------------------------


async def nats_read(url: str, category: str) -> list[dict[str, Any]]:
    """Everything JetStream holds for ``category``, read with an ephemeral pull consumer."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=5)
        try:
            name = await js.find_stream_name_by_subject(f"thalo.{category}.>")
        except NotFoundError:
            return []
        total = (await js.stream_info(name)).state.messages
        out: list[dict[str, Any]] = []
        if not total:
            return out
        sub = await js.pull_subscribe(f"thalo.{category}.>", stream=name)
        for _ in range(total // 10 + 10):  # bounded: each fetch returns at least one
            if len(out) >= total:
                break
            for msg in await sub.fetch(min(500, total - len(out)), timeout=5):
                out.append(
                    {
                        "subject": msg.subject,
                        "msg_id": (msg.headers or {}).get("Nats-Msg-Id"),
                        **orjson.loads(msg.data),
                    }
                )
                await msg.ack()
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def redis_read(url: str, category: str) -> list[dict[str, Any]]:
    """Every entry of ``thalo:{category}``, fields decoded; ``entry`` is the entry id."""
    from redis.asyncio import Redis

    client = Redis.from_url(url, decode_responses=True)
    try:
        entries = await client.xrange(redis_key(category))
    finally:
        await client.aclose()
    return [{"entry": entry, **fields} for entry, fields in entries]


async def broker_count(kind: str, url: str, category: str) -> int:
    """How many messages the broker holds for ``category`` (cheap: stream info, XLEN)."""
    if kind == "nats":
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            info = await nc.jetstream().stream_info(nats_stream_name(category))
        except NotFoundError:
            return 0
        finally:
            await nc.close()
        return int(info.state.messages)
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        return int(await client.xlen(redis_key(category)))
    finally:
        await client.aclose()


async def broker_read(kind: str, url: str, category: str) -> list[dict[str, Any]]:
    return await (nats_read if kind == "nats" else redis_read)(url, category)


async def forget(kind: str, url: str, category: str) -> None:
    """Remove what a test left on a shared broker."""
    if kind == "nats":
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(nats_stream_name(category))
        await nc.close()
    else:
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        await client.delete(redis_key(category))
        await client.aclose()


def make_broker(kind: str, url: str, category: str) -> Broker:
    if kind == "nats":
        return NatsBroker(url, category, ack_timeout=3.0, connect_timeout=1.0)
    return RedisBroker(url, category, timeout=3.0, connect_timeout=1.0)


def assert_exactly_once(kind: str, seen: list[dict[str, Any]], expected: list[Message]) -> None:
    """The broker holds ``expected`` in global order, each once, with every field."""
    assert [int(e["global_position"]) for e in seen] == [m.global_position for m in expected]
    for entry, message in zip(seen, expected, strict=True):
        assert entry["id"] == message.id
        assert entry["stream_name"] == message.stream_name
        assert entry["type"] == message.type
        assert int(entry["position"]) == message.position
        assert entry["time"] == message.time.isoformat()
        if kind == "nats":
            assert entry["subject"] == f"thalo.{message.stream_name.split('-')[0]}.{message.type}"
            assert entry["msg_id"] == message.id
            assert entry["data"] == message.data and entry["metadata"] == message.metadata
        else:
            assert entry["entry"] == f"{message.global_position}-0"
            assert orjson.loads(entry["data"]) == message.data
            assert orjson.loads(entry["metadata"]) == message.metadata


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Event]:
    """``relay.run`` in a task; stopped (cleanly) on leaving."""
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@pytest.fixture(params=["nats", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def category(kind: str) -> AsyncIterator[str]:
    name = unique("relay")
    yield name
    await forget(kind, NATS_URL if kind == "nats" else REDIS_URL, name)


# --- delivery ---------------------------------------------------------------------


async def test_relays_a_category_in_order_and_a_resend_is_dropped_by_the_broker(
    store: MessageStore, kind: str, category: str
) -> None:
    """Every event arrives once, in order; a relay that restarts before recording its
    position (simulated: its recorded position rewound) publishes again and the broker
    refuses every repeat."""
    url = NATS_URL if kind == "nats" else REDIS_URL
    await write_events(store, category, 250)
    await store.write_message(f"{category}:other-x", NewMessage("Noise", {}))  # not relayed
    relay = Relay(store, category, make_broker(kind, url, category), name="t", batch_size=100)
    async with running(relay):
        await eventually(lambda: _at(relay, 250))
    expected = await category_messages(store, category)
    assert_exactly_once(kind, await broker_read(kind, url, category), expected)
    assert relay.duplicates == 0
    assert await recorded_position(store, category, "t") == expected[-1].global_position

    # The crash: the broker acknowledged up to the end, the store recorded only 30.
    await store.write_message(
        relay.position_stream, NewMessage(POSITION_TYPE, {"position": expected[29].global_position})
    )
    await write_events(store, category, 40, start=250)
    again = Relay(store, category, make_broker(kind, url, category), name="t", batch_size=64)
    async with running(again):
        await eventually(lambda: _at(again, 260))
    expected = await category_messages(store, category)
    assert_exactly_once(kind, await broker_read(kind, url, category), expected)
    assert again.handled == 260 and again.duplicates == 220  # 250 - 30 re-sent, dropped
    assert await recorded_position(store, category, "t") == expected[-1].global_position


async def _failed(relay: Relay) -> bool:
    return relay.failures > 0


async def _at(relay: Relay, handled: int) -> bool:
    return relay.handled >= handled


async def test_resumes_from_the_recorded_position_after_a_clean_stop(
    store: MessageStore, kind: str, category: str
) -> None:
    url = NATS_URL if kind == "nats" else REDIS_URL
    await write_events(store, category, 120)
    first = Relay(store, category, make_broker(kind, url, category), name="r", batch_size=50)
    async with running(first):
        await eventually(lambda: _at(first, 120))
    head = (await category_messages(store, category))[-1].global_position
    assert await recorded_position(store, category, "r") == head

    await write_events(store, category, 30, start=120)
    second = Relay(store, category, make_broker(kind, url, category), name="r", batch_size=50)
    assert await second.start_position() == head + 1
    async with running(second):
        await eventually(lambda: _at(second, 30))
    assert second.handled == 30 and second.duplicates == 0  # nothing re-sent
    assert_exactly_once(
        kind, await broker_read(kind, url, category), await category_messages(store, category)
    )


# --- a broker that goes away --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnBroker:
    """A NATS (JetStream, file storage) or Redis (AOF, fsync always) server of the test's own."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        scheme = "nats" if kind == "nats" else "redis"
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nats-server" if self.kind == "nats" else "redis-server")
        if binary is None:
            binary = "/usr/sbin/nats-server" if self.kind == "nats" else "/usr/bin/redis-server"
        if self.kind == "nats":
            argv = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js"]
            argv += ["-sd", str(self.workdir)]
        else:
            argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
            argv += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.proc.poll() is None, f"{argv[0]} exited {self.proc.returncode}"
            assert time.monotonic() < deadline, f"{argv[0]} did not listen on {self.port}"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def own_broker(kind: str, tmp_path: Path) -> Iterator[OwnBroker]:
    workdir = tmp_path / f"{kind}-data"
    workdir.mkdir()
    broker = OwnBroker(kind, workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


async def test_a_broker_restart_loses_nothing(
    tmp_path: Path, kind: str, own_broker: OwnBroker
) -> None:
    """Events written before, during and after the broker's absence all arrive, once, in order;
    the relay keeps running (retrying) while the broker is away."""
    category = unique("relay")
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        relay = Relay(
            store, category, make_broker(kind, own_broker.url, category), name="rs",
            batch_size=20, retry_initial=0.05, retry_max=0.3,
        )  # fmt: skip
        async with running(relay):
            await write_events(store, category, 100)
            await eventually(lambda: _at(relay, 100))
            own_broker.kill()  # mid-run: the relay is polling, more events come
            for i in range(4):
                await write_events(store, category, 25, start=100 + 25 * i)
                await asyncio.sleep(0.2)
            assert relay.failures > 0 and relay.handled == 100 and not relay.connected
            own_broker.start()  # same port, same storage
            await write_events(store, category, 50, start=200)
            await eventually(lambda: _at(relay, 250))
        expected = await category_messages(store, category)
        assert len(expected) == 250
        assert_exactly_once(kind, await broker_read(kind, own_broker.url, category), expected)
        assert await recorded_position(store, category, "rs") == expected[-1].global_position


async def test_a_stop_while_the_broker_is_away_records_the_last_acknowledged_position(
    tmp_path: Path, kind: str, own_broker: OwnBroker
) -> None:
    category = unique("relay")
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        await write_events(store, category, 60)
        relay = Relay(
            store, category, make_broker(kind, own_broker.url, category), name="st",
            batch_size=20, retry_initial=0.05, retry_max=0.3,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await eventually(lambda: _at(relay, 60))
        sent = (await category_messages(store, category))[-1].global_position
        own_broker.kill()
        await write_events(store, category, 30, start=60)
        await eventually(lambda: _failed(relay))
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, 10)  # returns, does not raise
        assert time.monotonic() - started < 2
        assert await recorded_position(store, category, "st") == sent


# --- the command ------------------------------------------------------------------


def _spawn(store_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [THALO, "--store", store_url, "relay", *args],
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_the_command_relays_stops_on_sigterm_and_survives_sigkill(
    tmp_path: Path, kind: str, category: str
) -> None:
    """``thalo relay`` through the real entry point: SIGTERM stops it with its position
    recorded; after a SIGKILL mid-run a restart leaves the broker with every event once."""
    url = NATS_URL if kind == "nats" else REDIS_URL
    store_url = f"sqlite:///{tmp_path / 'cli.db'}"
    async with open_store(store_url) as store:
        await write_events(store, category, 3000)
        args = (category, "--to", url, "--batch-size", "10", "--progress-every", "0.2")

        async def count() -> int:
            return await broker_count(kind, url, category)

        proc = _spawn(store_url, *args)
        try:
            await eventually(lambda: _more(count, 200), timeout=30)
            proc.send_signal(signal.SIGKILL)  # mid-run: batches in flight, position behind
            proc.communicate(timeout=10)
            assert await count() < 3000, "too fast to kill mid-run"
            proc = _spawn(store_url, *args)
            await eventually(lambda: _more(count, 3000), timeout=40)
            await write_events(store, category, 10, start=3000)
            await eventually(lambda: _more(count, 3010), timeout=20)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        expected = await category_messages(store, category)
        assert_exactly_once(kind, await broker_read(kind, url, category), expected)
        name = f"relay-{kind}"
        assert await recorded_position(store, category, name) == expected[-1].global_position
        assert f"stopped at position {expected[-1].global_position}" in err
        assert "events/s" in err and "lag 0" in err


async def _more(count: Callable[[], Awaitable[int]], at_least: int) -> bool:
    return await count() >= at_least


def test_the_command_names_the_extra_when_the_client_package_is_missing(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['nats'] = None; from thalo.cli.main import main; "
        f"main(['--store', 'sqlite:///{tmp_path / 's.db'}', 'relay', 'c', '--to', '{NATS_URL}'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'thalo[relay]'" in proc.stderr


def test_the_command_refuses_another_scheme(tmp_path: Path) -> None:
    proc = subprocess.run(
        [THALO, "--store", f"sqlite:///{tmp_path / 's.db'}", "relay", "c", "--to", "http://x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "nats://HOST:PORT" in proc.stderr, proc.stderr
