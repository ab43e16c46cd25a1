"""Message DB's errors classified by SQLSTATE: only a lost or refused connection is
"cannot connect" (StoreUnavailable); limits and data errors are bad input (exit 2).

The store checks the limits it knows before writing (see the conformance suite);
these tests reach the server past those checks, through the group-commit writer,
to pin the fallback for a limit thalo did not foresee.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from thalo.core import NewMessage
from thalo.errors import InvalidMessage, InvalidStoreArgument, StoreError, StoreUnavailable
from thalo.store import MessageStore
from thalo.store.encoding import encode_messages
from thalo.store.messagedb import MessageDbStore, _translate, _write_params
from thalo.store.messagedb_writer import PendingWrite, connection_failure
from thalo.testing.conformance import unique_category

URL = "postgresql://u@db.example/x"


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (pg_errors.ConnectionFailure("gone"), True),  # 08006
        (pg_errors.AdminShutdown("terminating connection"), True),  # 57P01
        (pg_errors.TooManyConnections("no slot"), True),  # 53300
        (PoolTimeout("no connection in 10 s"), True),
        (pg_errors.ProgramLimitExceeded("index row size 4016 exceeds btree"), False),  # 54000
        (pg_errors.NumericValueOutOfRange("bigint out of range"), False),  # 22003
        (pg_errors.DiskFull("could not extend file"), False),  # 53100
        (pg_errors.SerializationFailure("could not serialize"), False),  # 40001
    ],
)
def test_only_connection_failures_are_unavailable(error: Exception, unavailable: bool) -> None:
    assert connection_failure(error) is unavailable
    translated = _translate(error, URL, "acct-1", None)
    assert isinstance(translated, StoreUnavailable) is unavailable
    assert ("cannot connect" in str(translated)) is unavailable


def test_limits_and_data_errors_are_bad_input() -> None:
    limit = pg_errors.ProgramLimitExceeded("index row size 4016 exceeds btree version 4 maximum")
    on_write = _translate(limit, URL, "acct-1", None)
    assert type(on_write) is InvalidMessage and on_write.exit_code == 2
    assert "SQLSTATE 54000" in str(on_write) and "'acct-1'" in str(on_write)
    on_read = _translate(pg_errors.NumericValueOutOfRange("bigint out of range"), URL)
    assert type(on_read) is InvalidStoreArgument and on_read.exit_code == 2
    other = _translate(pg_errors.DiskFull("could not extend file"), URL, "acct-1", None)
    assert type(other) is StoreError and other.exit_code == 5
    assert "SQLSTATE 53100" in str(other)
    cancelled = _translate(pg_errors.QueryCanceled("canceling statement"), URL)
    assert type(cancelled) is StoreUnavailable and "cancelled the statement" in str(cancelled)


def _oversized_stream() -> str:
    """A stream name PostgreSQL's index cannot hold: 4,000 bytes that do not compress."""
    rng = random.Random(7)
    return f"{unique_category()}-" + "".join(chr(0x1F300 + rng.randrange(700)) for _ in range(1000))


@pytest.mark.postgres
async def test_a_server_side_limit_fails_only_its_writer(
    postgres_url: str,  # set up before the event loop runs (it installs Message DB)
    store_factory: Callable[..., Awaitable[MessageStore]],
) -> None:
    """Past thalo's own check, "index row size exceeds btree" (54000) is the writer's bad
    input, and concurrent writes in the same group commit are still recorded."""
    store = await store_factory("messagedb")
    assert isinstance(store, MessageDbStore)
    stream = _oversized_stream()
    message = NewMessage("Opened", {"n": 1})
    encoded = encode_messages(f"{unique_category()}-1", [message])
    bad = PendingWrite(stream, None, _write_params(stream, encoded, None))
    category = unique_category()
    good = [
        store.write_message(f"{category}-{n}", NewMessage("Opened", {"n": n}), -1) for n in range(3)
    ]
    results = await asyncio.gather(store._writer.write(bad), *good, return_exceptions=True)
    error = results[0]
    assert type(error) is InvalidMessage, error
    assert error.exit_code == 2 and "index row size" in str(error)
    assert "cannot connect" not in str(error)
    assert results[1:] == [0, 0, 0]
    assert len(await store.get_category_messages(category)) == 3
