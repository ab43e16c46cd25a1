"""Relays: forward a category's messages to a broker, in order, at least once, deduplicated there.

A relay is a consumer (``thalo.consumer.Consumer``) whose handler publishes to a
broker: NATS JetStream or Redis Streams. It reads the category in global order
from its own recorded position (``{category}:position-{name}``), publishes a
batch, waits until the broker acknowledged every message of it, and only then
records the position. A crash between the acknowledgement and the record makes
the next run publish that batch again; the broker drops the repeats:

- NATS JetStream: subject ``thalo.{category}.{type}``, header ``Nats-Msg-Id`` =
  the message id, so JetStream discards a message whose id it saw within the
  stream's duplicate window (``duplicate_window``, 2 minutes by default).
- Redis Streams: ``XADD thalo:{category}`` with the explicit entry id
  ``{global_position}-0``; Redis refuses an id equal to or smaller than the
  stream's last one, which the relay counts as "already there".

A broker that goes away is retried with exponential back-off (never skipping a
message, never raising out of ``run``); so is a store that goes away. See
docs/relay.md.

``nats`` and ``redis`` are imported when a broker connects, not with this
module, so ``thalo`` stays cheap to import and each extra is needed only when used.
"""

from __future__ import annotations

__all__ = [
    "Broker",
    "NatsBroker",
    "Rate",
    "RedisBroker",
    "Relay",
    "broker_for",
    "category_head",
    "nats_stream_name",
    "nats_subject",
    "nats_token",
    "redis_fields",
    "redis_key",
]

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from thalo.consumer.consumer import Consumer, idle
from thalo.core import Message
from thalo.errors import StoreError, UsageError
from thalo.store import MessageStore, redact_url

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext
    from redis.asyncio import Redis

log = logging.getLogger("thalo.consumer.relay")

DEFAULT_DUPLICATE_WINDOW = 120.0
"""Seconds JetStream remembers message ids, for a stream the relay creates."""


class Broker(Protocol):
    """Where a relay publishes: ``publish`` returns only once the broker has every message."""

    @property
    def description(self) -> str:
        """The broker's URL (credentials redacted) and where it puts messages, for logs."""
        ...

    async def connect(self) -> None:
        """Open the connection and make sure the destination exists; raises when unreachable."""
        ...

    async def publish(self, messages: Sequence[Message]) -> int:
        """Publish ``messages`` in order; return how many the broker already had (duplicates).

        Raises when any message was not acknowledged; the caller then publishes
        the same messages again (after ``close`` and ``connect``).
        """
        ...

    async def close(self) -> None:
        """Drop the connection (idempotent; never raises)."""
        ...


# --- NATS JetStream ---------------------------------------------------------------

_UNSAFE_TOKEN = re.compile(r"[^A-Za-z0-9_:+\-]")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9\-]")


def nats_token(value: str) -> str:
    """``value`` as one NATS subject token: characters other than letters, digits,
    ``_ : + -`` become ``%XX`` (``.``, ``*``, ``>`` and whitespace would split or
    widen a subject). Types and categories of the usual shape pass unchanged."""
    return _UNSAFE_TOKEN.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), value)


def nats_subject(message: Message) -> str:
    """``thalo.{category}.{type}`` for one message of a category."""
    from thalo.core import category

    return f"thalo.{nats_token(category(message.stream_name))}.{nats_token(message.type)}"


def nats_stream_name(category_name: str) -> str:
    """The JetStream stream a relay creates for a category: ``THALO_{category}``,
    characters other than letters, digits and ``-`` written as ``_XX`` (hex)."""
    return "THALO_" + _UNSAFE_NAME.sub(
        lambda m: "".join(f"_{b:02X}" for b in m[0].encode()), category_name
    )


def _nats_payload(message: Message) -> bytes:
    return orjson.dumps(message.to_dict())


class NatsBroker:
    """Publishes to NATS JetStream, ``Nats-Msg-Id`` = the message id.

    On ``connect`` it makes sure a stream captures ``thalo.{category}.>``: an
    existing stream that already does (any name) is used as it is; otherwise
    ``stream`` (default :func:`nats_stream_name`) is created with file storage
    and ``duplicate_window`` seconds of deduplication. A batch is sent with
    ``publish_async`` (in order, on one connection) and its acknowledgements are
    awaited together, within ``ack_timeout`` seconds.
    """

    def __init__(
        self,
        url: str,
        category_name: str,
        *,
        stream: str | None = None,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
        ack_timeout: float = 10.0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.category = category_name
        self.subjects = f"thalo.{nats_token(category_name)}.>"
        self.stream = stream or nats_stream_name(category_name)
        self.duplicate_window = duplicate_window
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._closed = asyncio.Event()

    @property
    def description(self) -> str:
        return f"{redact_url(self.url)} (JetStream stream {self.stream}, {self.subjects})"

    async def connect(self) -> None:
        import nats

        self._closed = asyncio.Event()
        closed = self._closed

        async def on_closed() -> None:
            closed.set()

        async def on_error(exc: Exception) -> None:
            log.debug("NATS connection error: %s", exc)

        # No reconnection inside the client: the relay reconnects itself, so that a
        # lost connection fails the batch in flight at once instead of buffering it.
        self._nc = await nats.connect(
            self.url,
            allow_reconnect=False,
            connect_timeout=max(1, round(self.connect_timeout)),
            max_reconnect_attempts=0,
            closed_cb=on_closed,
            disconnected_cb=on_closed,
            error_cb=on_error,
            name="thalo-relay",
        )
        self._js = self._nc.jetstream(timeout=self.ack_timeout)
        await self._ensure_stream(self._js)

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        from nats.js.api import StorageType
        from nats.js.errors import NotFoundError

        try:
            self.stream = await js.find_stream_name_by_subject(self.subjects)
            return
        except NotFoundError:
            pass
        await js.add_stream(
            name=self.stream,
            subjects=[self.subjects],
            storage=StorageType.FILE,
            duplicate_window=self.duplicate_window,
        )
        log.info("created JetStream stream %s for %s", self.stream, self.subjects)

    async def publish(self, messages: Sequence[Message]) -> int:
        if self._js is None:
            raise ConnectionError("not connected to NATS")
        futures: list[asyncio.Future[Any]] = []
        try:
            for message in messages:
                headers = {
                    "Nats-Msg-Id": message.id,
                    "Thalo-Global-Position": str(message.global_position),
                }
                futures.append(
                    await self._js.publish_async(
                        nats_subject(message), _nats_payload(message), headers=headers
                    )
                )
            acks = await self._wait(futures)
        finally:
            for future in futures:
                future.cancel()  # frees the client's slot of an ack that never came
        return sum(1 for ack in acks if ack.duplicate)

    async def _wait(self, futures: list[asyncio.Future[Any]]) -> list[Any]:
        """All acknowledgements, or an error as soon as the connection closes or time runs out."""
        every = asyncio.ensure_future(asyncio.gather(*futures))
        lost = asyncio.ensure_future(self._closed.wait())
        try:
            done, _ = await asyncio.wait(
                {every, lost}, timeout=self.ack_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            lost.cancel()
        if every in done:
            return list(every.result())
        every.cancel()
        with contextlib.suppress(BaseException):
            await every
        if lost in done:
            raise ConnectionError("the NATS connection closed before every ack arrived")
        raise TimeoutError(f"JetStream did not acknowledge within {self.ack_timeout} s")

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()


# --- Redis Streams ---------------------------------------------------------------


def redis_key(category_name: str) -> str:
    """The Redis stream a category goes to: ``thalo:{category}``."""
    return f"thalo:{category_name}"


def redis_fields(message: Message) -> dict[str, str]:
    """One message as the fields of a Redis stream entry (data and metadata as JSON text)."""
    return {
        "id": message.id,
        "stream_name": message.stream_name,
        "type": message.type,
        "position": str(message.position),
        "global_position": str(message.global_position),
        "data": orjson.dumps(message.data).decode(),
        "metadata": orjson.dumps(message.metadata).decode(),
        "time": message.time.isoformat(),
    }


class RedisBroker:
    """Appends to the Redis stream ``thalo:{category}`` with entry id ``{global_position}-0``.

    A batch is one pipeline (no transaction); Redis answers each ``XADD`` in
    order. An entry whose id is not above the stream's last id was added
    before (the relay adds in global order), so that refusal counts as a
    duplicate; any other error fails the batch.
    """

    def __init__(
        self,
        url: str,
        category_name: str,
        *,
        key: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.category = category_name
        self.key = key or redis_key(category_name)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._client: Redis | None = None

    @property
    def description(self) -> str:
        return f"{redact_url(self.url)} (Redis stream {self.key})"

    async def connect(self) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.timeout,
            retry_on_timeout=False,
        )
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._client = client

    async def publish(self, messages: Sequence[Message]) -> int:
        from redis.exceptions import ResponseError

        if self._client is None:
            raise ConnectionError("not connected to Redis")
        pipe = self._client.pipeline(transaction=False)
        for message in messages:
            pipe.xadd(
                self.key,
                redis_fields(message),  # type: ignore[arg-type]  # dict[str, str] is a valid field map
                id=f"{message.global_position}-0",
            )
        results = await pipe.execute(raise_on_error=False)
        duplicates = 0
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, ResponseError) and "equal or smaller" in str(result):
                duplicates += 1
            elif isinstance(result, BaseException):
                raise RuntimeError(
                    f"Redis refused global position {message.global_position}: {result}"
                ) from result
        return duplicates

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


def broker_for(url: str, category_name: str, **options: Any) -> Broker:
    """The broker a URL names: ``nats://…`` (also ``tls://``) or ``redis://…`` / ``rediss://…``."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("nats", "tls"):
        return NatsBroker(url, category_name, **options)
    if scheme in ("redis", "rediss"):
        return RedisBroker(url, category_name, **options)
    raise UsageError(f"--to {url!r}: give nats://HOST:PORT or redis://HOST:PORT[/DB]")


# --- the relay ----------------------------------------------------------------------


async def category_head(store: MessageStore, category_name: str) -> int:
    """The global position of the category's last message (0 when it has none).

    Read with one indexed query (SQLite: ``messages_category``; Message DB: its
    ``messages_category`` index), so a progress line can show the lag.
    """
    if store.dialect == "sqlite":
        sql = "SELECT max(global_position) FROM messages WHERE category = %s"
    else:
        sql = (
            "SELECT max(global_position) FROM message_store.messages "
            "WHERE message_store.category(stream_name) = %s"
        )
    async with store.transaction(read_only=True) as tx:
        rows = await tx.execute(sql, (category_name,))
    return int(rows[0][0] or 0) if rows else 0


class Relay(Consumer):
    """Forwards ``category_name`` to ``broker``; the position is recorded after each ack.

    ``run(stop)`` never raises for a broker or store that is away: it logs,
    waits (``retry_initial`` seconds, doubling up to ``retry_max``) and tries
    the same batch again. When ``stop`` is set it records the position of the
    last acknowledged message and returns. The position stream is
    ``{category}:position-{name}``.
    """

    def __init__(
        self,
        store: MessageStore,
        category_name: str,
        broker: Broker,
        *,
        name: str = "relay",
        batch_size: int = 500,
        poll_interval: float = 0.1,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        super().__init__(
            store,
            category_name,
            self._publish_one,
            name=name,
            batch_size=batch_size,
            poll_interval=poll_interval,
            position_update_interval=batch_size,
        )
        self.broker = broker
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.duplicates = 0  # messages the broker already had
        self.failures = 0  # failed attempts (broker or store), for the progress line
        self.connected = False
        self._stop = asyncio.Event()

    async def _publish_one(self, message: Message) -> None:
        """The ``Consumer`` handler: publish one message (``poll`` publishes batches)."""
        self.duplicates += await self.broker.publish([message])

    async def _backoff(self, attempt: int, what: str, exc: BaseException) -> None:
        delay = min(self.retry_max, self.retry_initial * 2 ** min(attempt, 20))
        self.failures += 1
        log.warning(
            "relay %s: %s failed (%s: %s); retrying in %.1f s",
            self.category,
            what,
            type(exc).__name__,
            exc,
            delay,
        )
        await idle(self._stop, delay)

    async def _connect(self) -> bool:
        """Connect to the broker, retrying until it answers; False when stopped first."""
        attempt = 0
        while not self.connected:
            if self._stop.is_set():
                return False
            try:
                await self.broker.connect()
            except Exception as exc:
                await self.broker.close()
                await self._backoff(attempt, f"connecting to {self.broker.description}", exc)
                attempt += 1
            else:
                self.connected = True
                if attempt:
                    log.warning("relay %s: connected to %s", self.category, self.broker.description)
        return True

    async def _publish(self, batch: Sequence[Message]) -> bool:
        """Publish ``batch`` until the broker acknowledged all of it; False when stopped first."""
        attempt = 0
        while True:
            if not await self._connect():
                return False
            try:
                self.duplicates += await self.broker.publish(batch)
                return True
            except Exception as exc:
                self.connected = False
                await self.broker.close()
                span = f"{batch[0].global_position}..{batch[-1].global_position}"
                await self._backoff(attempt, f"publishing global positions {span}", exc)
                attempt += 1
            if self._stop.is_set():
                return False

    async def poll(self) -> int:
        """Publish the next batch and record its position once acknowledged; return its size."""
        if self.position is None:
            self.position = await self.start_position()
        batch = await self.store.get_category_messages(
            self.category, self.position, self.batch_size
        )
        if not batch or not await self._publish(batch):
            return 0
        self.position = batch[-1].global_position + 1
        self.handled += len(batch)
        self._unrecorded += len(batch)
        await self.record_position()
        return len(batch)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Relay until ``stop`` is set; then record the position and close the broker."""
        self._stop = stop = stop or asyncio.Event()
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    handled = await self.poll()
                except StoreError as exc:
                    # A store that went away (or refused a read): same batch again, later.
                    await self._backoff(attempt, f"reading or recording on {self.store.url}", exc)
                    attempt += 1
                    continue
                attempt = 0
                if handled < self.batch_size:
                    await idle(stop, self.poll_interval)
        finally:
            try:
                await asyncio.shield(self.record_position())
            except StoreError as exc:
                log.warning("relay %s: could not record position: %s", self.category, exc)
            finally:
                await self.broker.close()
                self.connected = False


class Rate:
    """Events per second over a sliding few seconds, for a progress line."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._samples: list[tuple[float, int]] = []

    def update(self, count: int) -> float:
        """Add the running total ``count`` now; return the rate over the window."""
        now = time.monotonic()
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
            self._samples.pop(0)
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
