"""The message-store conformance suite: Message DB's semantics, checked on any backend.

Subclass ``MessageStoreConformance`` in a test module and provide a
``store_url`` fixture (or override ``store`` and ``store_without_condition``
for a store ``open_store`` does not know)::

    class TestMyStore(MessageStoreConformance):
        @pytest.fixture
        def store_url(self) -> str:
            return "sqlite:///" + ...

Every test writes to its own uniquely named categories, so one database can
serve a whole run. ``ProcessRaceConformance`` adds the race between two OS
processes, for stores that several processes can open (not ``:memory:``).
"""

from __future__ import annotations

__all__ = ["MessageStoreConformance", "ProcessRaceConformance", "unique_category"]

import asyncio
import json
import math
import random
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from thalo.core import NewMessage
from thalo.errors import (
    DuplicateMessageId,
    InvalidMessage,
    InvalidStoreArgument,
    InvalidStreamName,
    StoreError,
    WrongExpectedVersion,
)
from thalo.store import MessageStore, consumer_group_member, open_store
from thalo.store.arguments import CONDITION_NOT_ACTIVATED
from thalo.store.encoding import MAX_STREAM_NAME_BYTES


def unique_category(prefix: str = "test") -> str:
    """A category name no other test uses (Message DB camelCase, no ``-``)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _event(n: int = 0, kind: str = "Happened", **metadata: Any) -> NewMessage:
    return NewMessage(kind, {"n": n}, metadata or None)


def _incompressible(prefix: str, size: int) -> str:
    """``prefix`` padded to exactly ``size`` UTF-8 bytes with random CJK characters, which
    PostgreSQL cannot compress in an index row (repeated text would hide a limit)."""
    rng = random.Random(prefix)
    text = prefix
    while len(text.encode()) + 3 <= size:
        text += chr(0x4E00 + rng.randrange(20000))
    return text + "x" * (size - len(text.encode()))


async def _sql_condition_on_server(store: MessageStore) -> bool:
    """Whether PostgreSQL has ``message_store.sql_condition`` on for every connection
    (server, database or role setting), so conditions work without ``sql_condition=True``."""
    if store.dialect != "postgresql":
        return False
    async with store.transaction(read_only=True) as tx:
        rows = await tx.execute("SELECT current_setting('message_store.sql_condition', true)")
    return bool(rows) and str(rows[0][0]).lower() in ("on", "true", "1", "yes")


class MessageStoreConformance:
    """Behaviours every MessageStore must have, identical on every backend."""

    @pytest_asyncio.fixture
    async def store(self, store_url: str) -> AsyncIterator[MessageStore]:
        async with open_store(store_url, sql_condition=True) as opened:
            yield opened

    @pytest_asyncio.fixture
    async def store_without_condition(self, store_url: str) -> AsyncIterator[MessageStore]:
        async with open_store(store_url) as opened:
            yield opened

    # --- positions --------------------------------------------------------------------

    async def test_positions_and_global_positions(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        before = datetime.now(UTC) - timedelta(seconds=5)
        written = [NewMessage("Opened", {"k": i}, {"schemaVersion": "1"}) for i in range(3)]
        positions = [await store.write_message(stream, m) for m in written]
        assert positions == [0, 1, 2]
        assert await store.stream_version(stream) == 2
        read = await store.get_stream_messages(stream)
        assert [m.position for m in read] == [0, 1, 2]
        assert [m.id for m in read] == [m.id for m in written]
        assert [m.data for m in read] == [{"k": 0}, {"k": 1}, {"k": 2}]
        assert all(m.metadata == {"schemaVersion": "1"} for m in read)
        assert all(m.stream_name == stream and m.type == "Opened" for m in read)
        globals_ = [m.global_position for m in read]
        assert globals_ == sorted(set(globals_)) and globals_[0] >= 1
        for m in read:
            assert m.time.tzinfo is not None and m.time.utcoffset() == timedelta(0)
            assert before <= m.time <= datetime.now(UTC) + timedelta(seconds=5)

    async def test_missing_stream(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-none"
        assert await store.stream_version(stream) is None
        assert await store.get_stream_messages(stream) == []
        assert await store.get_last_stream_message(stream) is None

    async def test_metadata_none_and_id_is_canonical(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        ident = str(uuid.uuid4()).upper()
        await store.write_message(stream, NewMessage("A", {}, None, id=ident))
        (message,) = await store.get_stream_messages(stream)
        assert message.metadata is None and message.data == {}
        assert message.id == ident.lower()

    # --- expected version -------------------------------------------------------------

    async def test_expected_version_new_stream(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        assert await store.write_message(stream, _event(), expected_version=-1) == 0
        with pytest.raises(WrongExpectedVersion) as caught:
            await store.write_message(stream, _event(), expected_version=-1)
        assert (caught.value.stream_name, caught.value.expected, caught.value.actual) == (
            stream,
            -1,
            0,
        )
        assert str(caught.value) == (
            f"wrong expected version for stream {stream!r}: expected -1, but stream version is 0"
        )
        assert await store.stream_version(stream) == 0

    async def test_expected_version_exact_and_stale(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        for version in range(-1, 3):
            assert await store.write_message(stream, _event(), expected_version=version) == (
                version + 1
            )
        with pytest.raises(WrongExpectedVersion) as caught:
            await store.write_message(stream, _event(), expected_version=1)
        assert str(caught.value) == (
            f"wrong expected version for stream {stream!r}: expected 1, but stream version is 3"
        )
        assert caught.value.exit_code == 3
        assert await store.write_message(stream, _event()) == 4  # None: no check

    async def test_expected_version_on_missing_stream(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        with pytest.raises(WrongExpectedVersion) as caught:
            await store.write_message(stream, _event(), expected_version=4)
        assert str(caught.value) == (
            f"wrong expected version for stream {stream!r}: expected 4, "
            "but the stream does not exist"
        )
        assert caught.value.actual == -1
        assert await store.stream_version(stream) is None

    # --- atomic multi-message writes ----------------------------------------------------

    async def test_write_several_atomically(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        assert await store.write_messages(stream, [_event(i) for i in range(3)], -1) == 2
        assert await store.write_messages(stream, [_event(i) for i in range(3, 5)], 2) == 4
        read = await store.get_stream_messages(stream)
        assert [m.data["n"] for m in read] == [0, 1, 2, 3, 4]
        assert [m.position for m in read] == [0, 1, 2, 3, 4]

    async def test_one_write_shares_one_time(self, store: MessageStore) -> None:
        """Message DB stamps a transaction's messages with its start time (``now()``)."""
        stream = f"{unique_category()}-1"
        await store.write_messages(stream, [_event(i) for i in range(3)])
        assert len({m.time for m in await store.get_stream_messages(stream)}) == 1

    async def test_conflicting_batch_writes_nothing(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        await store.write_message(stream, _event())
        with pytest.raises(WrongExpectedVersion):
            await store.write_messages(stream, [_event(i) for i in range(3)], -1)
        assert await store.stream_version(stream) == 0

    async def test_failing_batch_leaves_nothing(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        first = _event(0)
        await store.write_message(stream, first)
        batch = [_event(1), _event(2), NewMessage("Again", {}, None, id=first.id)]
        with pytest.raises(DuplicateMessageId) as caught:
            await store.write_messages(stream, batch, 0)
        assert caught.value.message_id == first.id
        assert [m.data["n"] for m in await store.get_stream_messages(stream)] == [0]
        assert await store.write_messages(stream, [_event(1), _event(2)], 0) == 2

    async def test_duplicate_message_id(self, store: MessageStore) -> None:
        category = unique_category()
        message = _event()
        await store.write_message(f"{category}-1", message)
        with pytest.raises(DuplicateMessageId) as caught:
            await store.write_message(f"{category}-2", message)
        assert message.id in str(caught.value) and caught.value.exit_code == 2
        assert await store.stream_version(f"{category}-2") is None

    # --- reads and batching --------------------------------------------------------------

    async def test_stream_reads_batch_from_any_position(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        await store.write_messages(stream, [_event(i) for i in range(10)])
        window = await store.get_stream_messages(stream, position=3, batch_size=4)
        assert [m.position for m in window] == [3, 4, 5, 6]
        assert len(await store.get_stream_messages(stream, batch_size=-1)) == 10
        assert await store.get_stream_messages(stream, batch_size=0) == []
        assert await store.get_stream_messages(stream, position=10) == []
        assert [m.position for m in await store.get_stream_messages(stream, 8)] == [8, 9]

    async def test_raw_stream_reads_match_decoded_reads(self, store: MessageStore) -> None:
        stream = f"{unique_category('räw')}-1"
        written = [
            NewMessage("Plain", {"n": 1}),
            NewMessage("Wrote✓", {"text": "héllo 🎉", "list": [1, None, {"a": True}]}, {"k": "ü"}),
            NewMessage("Empty", {}),
        ]
        await store.write_messages(stream, [_event(i) for i in range(3)] + written)
        decoded = await store.get_stream_messages(stream, position=2, batch_size=3)
        raw = await store.get_stream_raw(stream, position=2, batch_size=3)
        assert [m.position for m in raw] == [2, 3, 4]
        assert [(r.position, r.type, r.time) for r in raw] == [
            (m.position, m.type, m.time) for m in decoded
        ]
        assert [json.loads(r.data) for r in raw] == [m.data for m in decoded]
        assert [None if r.metadata is None else json.loads(r.metadata) for r in raw] == [
            m.metadata for m in decoded
        ]
        assert len(await store.get_stream_raw(stream, batch_size=-1)) == 6
        assert await store.get_stream_raw(stream, position=6) == []
        assert await store.get_stream_raw(f"{unique_category()}-none") == []
        with pytest.raises(InvalidStreamName):
            await store.get_stream_raw("")

    async def test_category_reads_in_global_order(self, store: MessageStore) -> None:
        category = unique_category()
        streams = [f"{category}-{i}" for i in range(3)]
        for round_ in range(4):
            for stream in streams:
                await store.write_message(stream, _event(round_))
        everything = await store.get_category_messages(category)
        assert len(everything) == 12
        positions = [m.global_position for m in everything]
        assert positions == sorted(positions)
        assert [m.stream_name for m in everything[:3]] == streams
        start = everything[5].global_position
        window = await store.get_category_messages(category, position=start, batch_size=4)
        assert [m.global_position for m in window] == positions[5:9]
        rest = await store.get_category_messages(category, position=positions[-1] + 1)
        assert rest == []
        assert len(await store.get_category_messages(category, batch_size=-1)) == 12

    async def test_category_types_are_their_own_categories(self, store: MessageStore) -> None:
        category = unique_category()
        await store.write_message(f"{category}-1", _event(1))
        await store.write_message(f"{category}:command-1", _event(2, "Do"))
        await store.write_message(f"{category}:command+position-1", _event(3, "Pos"))
        assert [m.type for m in await store.get_category_messages(category)] == ["Happened"]
        commands = await store.get_category_messages(f"{category}:command")
        assert [m.stream_name for m in commands] == [f"{category}:command-1"]
        assert len(await store.get_category_messages(f"{category}:command+position")) == 1

    async def test_compound_and_cardinal_ids(self, store: MessageStore) -> None:
        category = unique_category()
        await store.write_message(f"{category}-a+b", _event(1))
        await store.write_message(f"{category}-a+c", _event(2))
        await store.write_message(f"{category}-a", _event(3))
        assert await store.stream_version(f"{category}-a+b") == 0
        assert [m.data["n"] for m in await store.get_stream_messages(f"{category}-a+c")] == [2]
        for size in (2, 3, 5):
            members = set()
            for member in range(size):
                found = await store.get_category_messages(
                    category, consumer_group_member=member, consumer_group_size=size
                )
                if found:
                    members.add(member)
                    assert len(found) == 3  # one cardinal id "a": one member gets all
            assert len(members) == 1

    # --- consumer groups, correlation, conditions -------------------------------------------

    async def test_consumer_groups_partition_by_message_db_hash(self, store: MessageStore) -> None:
        category = unique_category()
        streams = [f"{category}-{uuid.uuid4().hex[:8]}" for _ in range(24)]
        for stream in streams:
            await store.write_message(stream, _event())
        everything = {m.global_position for m in await store.get_category_messages(category)}
        size = 4
        seen: set[int] = set()
        for member in range(size):
            share = await store.get_category_messages(
                category, consumer_group_member=member, consumer_group_size=size
            )
            positions = {m.global_position for m in share}
            assert not positions & seen, "consumer group members overlap"
            seen |= positions
            for message in share:
                assert consumer_group_member(message.stream_name, size) == member
        assert seen == everything

    async def test_consumer_groups_skip_streams_without_id(self, store: MessageStore) -> None:
        category = unique_category()
        await store.write_message(category, _event())  # a stream named like its category
        assert len(await store.get_category_messages(category)) == 1
        for member in range(2):
            found = await store.get_category_messages(
                category, consumer_group_member=member, consumer_group_size=2
            )
            assert found == []

    async def test_correlation_filter(self, store: MessageStore) -> None:
        category, other = unique_category(), unique_category("other")
        stream = f"{category}-1"
        await store.write_message(stream, _event(1, correlationStreamName=f"{other}-7"))
        await store.write_message(stream, _event(2, correlationStreamName=f"{other}:command-7"))
        await store.write_message(stream, _event(3, correlationStreamName=other))
        await store.write_message(stream, _event(4))
        found = await store.get_category_messages(category, correlation=other)
        assert [m.data["n"] for m in found] == [1, 3]
        assert found[0].correlation_stream_name == f"{other}-7"
        typed = await store.get_category_messages(category, correlation=f"{other}:command")
        assert [m.data["n"] for m in typed] == [2]

    async def test_condition(self, store: MessageStore) -> None:
        category = unique_category()
        stream = f"{category}-1"
        await store.write_messages(stream, [_event(0, "A"), _event(1, "B"), _event(2, "B")])
        found = await store.get_stream_messages(stream, condition="type = 'B'")
        assert [m.position for m in found] == [1, 2]
        found = await store.get_category_messages(category, condition="position >= 2")
        assert [m.position for m in found] == [2]

    async def test_condition_needs_activation(self, store_without_condition: MessageStore) -> None:
        if await _sql_condition_on_server(store_without_condition):
            pytest.skip(
                "message_store.sql_condition is on server-wide here, so every connection may "
                "use conditions; refusing them cannot be checked on this server"
            )
        stream = f"{unique_category()}-1"
        await store_without_condition.write_message(stream, _event())
        with pytest.raises(InvalidStoreArgument, match=CONDITION_NOT_ACTIVATED):
            await store_without_condition.get_stream_messages(stream, condition="position = 0")

    async def test_last_message_by_type(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        kinds = ["Opened", "Deposited", "Withdrawn", "Deposited", "Noted"]
        await store.write_messages(stream, [_event(i, kind) for i, kind in enumerate(kinds)])
        last = await store.get_last_stream_message(stream)
        assert last is not None and (last.type, last.position) == ("Noted", 4)
        deposited = await store.get_last_stream_message(stream, "Deposited")
        assert deposited is not None and deposited.position == 3
        assert deposited.data == {"n": 3}
        assert await store.get_last_stream_message(stream, "Closed") is None

    # --- payloads ------------------------------------------------------------------------

    async def test_unicode_everywhere(self, store: MessageStore) -> None:
        stream = f"{unique_category('kätzchen')}-ñ+日本"
        data = {
            "text": "héllo wörld — 你好 — مرحبا — 🎉👩‍👩‍👧",
            "ключ": ["ä", "\u0301e", "\U0001f600"],
            "nested": {"emoji🙂": {"deep": "ß"}},
        }
        await store.write_message(stream, NewMessage("Wrote✓", data, {"note": "ünïcödé"}))
        (message,) = await store.get_stream_messages(stream)
        assert message.data == data and message.type == "Wrote✓"
        assert message.metadata == {"note": "ünïcödé"} and message.stream_name == stream

    async def test_one_mebibyte_payload(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-big"
        blob = "x" * (1024 * 1024)
        numbers = list(range(1000))
        await store.write_message(stream, NewMessage("Big", {"blob": blob, "numbers": numbers}))
        (message,) = await store.get_stream_messages(stream)
        assert message.data["blob"] == blob and message.data["numbers"] == numbers

    async def test_json_values_round_trip(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        data = {"int": -(2**62), "float": 1.5, "bool": True, "null": None, "list": [1, "a", {}]}
        await store.write_message(stream, NewMessage("T", data))
        (message,) = await store.get_stream_messages(stream)
        assert message.data == data

    async def test_json_numbers_read_back_as_their_text_says(self, store: MessageStore) -> None:
        """A number written as a float reads back as a float, an integer as an integer, on
        both backends and in raw reads. (PostgreSQL's jsonb prints ``1e+16`` as
        ``10000000000000000``; thalo writes large floats positionally with ``.0``.)
        ``-0.0`` reads back as ``0.0``: PostgreSQL's numeric has no negative zero."""
        stream = f"{unique_category()}-1"
        data = {
            "f16": 1e16,
            "f20": -1.5e20,
            "f300": 1.7976931348623157e308,
            "tiny": 1e-7,
            "one": 1.0,
            "negzero": -0.0,
            "list": [1e17, -0.0, 2**53, 10**16],
            "i16": 10**16,
            "u64": 2**64 - 1,
            "i64": -(2**63),
            "e+1 -0.0": '1e+16 -0.0 "1e+17"',
        }
        meta = {"f": 3e18, "z": -0.0, "schemaVersion": "1"}
        await store.write_message(stream, NewMessage("Numbers", data, meta))
        (message,) = await store.get_stream_messages(stream)
        (raw,) = await store.get_stream_raw(stream)
        expected = dict(data, negzero=0.0, list=[1e17, 0.0, 2**53, 10**16])
        for read in (message.data, json.loads(raw.data)):
            assert read == expected
            assert {k: type(v) for k, v in read.items()} == {
                k: type(v) for k, v in expected.items()
            }
            assert [type(v) for v in read["list"]] == [float, float, int, int]
            assert math.copysign(1.0, read["negzero"]) == 1.0
            assert math.copysign(1.0, read["list"][1]) == 1.0
        assert message.metadata == {"f": 3e18, "z": 0.0, "schemaVersion": "1"}
        assert type(message.metadata["f"]) is float
        assert math.copysign(1.0, message.metadata["z"]) == 1.0

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    async def test_non_finite_numbers_are_refused(self, store: MessageStore, value: float) -> None:
        """JSON has no NaN or Infinity: such a value is refused, never stored as null."""
        stream = f"{unique_category()}-1"
        cases = [
            NewMessage("A", {"x": value}),
            NewMessage("A", {"ok": None, "deep": [{"x": [1, value]}]}),
            NewMessage("A", {}, {"x": value}),
        ]
        for message in cases:
            with pytest.raises(InvalidMessage) as caught:
                await store.write_messages(stream, [_event(), message])
            assert "NaN or Infinity" in str(caught.value)
            assert caught.value.exit_code == 2
        assert await store.stream_version(stream) is None
        await store.write_message(stream, NewMessage("A", {"none": None, "list": [None]}))
        (read,) = await store.get_stream_messages(stream)
        assert read.data == {"none": None, "list": [None]}

    # --- limits PostgreSQL's indexes can hold ----------------------------------------------

    async def test_stream_name_limit_in_bytes(self, store: MessageStore) -> None:
        """A stream name is at most 1024 bytes in UTF-8 (Message DB indexes it), checked
        before writing with the same error and text on both backends."""
        emoji = f"{unique_category()}-{'😀' * 1000}"
        with pytest.raises(InvalidStreamName) as caught:
            await store.write_message(emoji, _event())
        assert caught.value.exit_code == 2
        assert caught.value.reason == (
            f"{len(emoji.encode())} bytes in UTF-8; a stream name may have at most "
            f"{MAX_STREAM_NAME_BYTES}"
        )
        # The largest name, incompressible and all category, with the largest
        # correlation stream name: the index rows still fit on PostgreSQL.
        category = _incompressible(unique_category(), MAX_STREAM_NAME_BYTES - 2)
        stream = f"{category}-1"
        other = _incompressible(unique_category("other"), MAX_STREAM_NAME_BYTES)
        assert len(stream.encode()) == MAX_STREAM_NAME_BYTES
        await store.write_message(stream, _event(1, correlationStreamName=other))
        found = await store.get_category_messages(category, correlation=other)
        assert [m.stream_name for m in found] == [stream]
        over = f"{category}-12"
        with pytest.raises(InvalidStreamName, match="1025 bytes in UTF-8"):
            await store.write_messages(over, [_event()])
        assert await store.stream_version(over) is None

    @pytest.mark.parametrize("value", [5, 1.5, True, ["a-1"], {"x": "a-1"}, "😀" * 300])
    async def test_correlation_stream_name_must_be_a_short_string(
        self, store: MessageStore, value: Any
    ) -> None:
        """``correlationStreamName`` is a string of at most 1024 bytes, or null, or absent:
        Message DB indexes its category, and would match a number by its JSON text."""
        stream = f"{unique_category()}-1"
        with pytest.raises(InvalidMessage, match="correlationStreamName") as caught:
            await store.write_messages(stream, [_event(), _event(1, correlationStreamName=value)])
        assert caught.value.exit_code == 2
        assert await store.stream_version(stream) is None
        await store.write_message(stream, _event(2, correlationStreamName=None))
        category = stream.partition("-")[0]
        assert await store.get_category_messages(category, correlation="5") == []

    # --- 64-bit arguments ----------------------------------------------------------------

    async def test_arguments_beyond_64_bits_are_refused(self, store: MessageStore) -> None:
        """Positions, batch sizes and expected versions are PostgreSQL bigints on both."""
        category = unique_category()
        stream = f"{category}-1"
        await store.write_message(stream, _event())
        huge = [2**63, -(2**63) - 1, 2**64, 10**5000]
        calls: list[Callable[[int], Awaitable[Any]]] = [
            lambda n: store.get_stream_messages(stream, position=n),
            lambda n: store.get_stream_messages(stream, batch_size=n),
            lambda n: store.get_stream_raw(stream, position=n),
            lambda n: store.get_stream_raw(stream, batch_size=n),
            lambda n: store.get_category_messages(category, position=n),
            lambda n: store.get_category_messages(category, batch_size=n),
            lambda n: store.write_message(stream, _event(), expected_version=n),
            lambda n: store.write_messages(stream, [_event(), _event()], expected_version=n),
        ]
        for call in calls:
            for value in huge:
                with pytest.raises(InvalidStoreArgument, match="64-bit") as caught:
                    await call(value)
                assert caught.value.exit_code == 2
        top = 2**63 - 1
        assert await store.get_stream_messages(stream, position=top) == []
        assert len(await store.get_stream_messages(stream, batch_size=top)) == 1
        assert await store.get_category_messages(category, position=top) == []
        assert len(await store.get_stream_raw(stream, position=-(2**63), batch_size=top)) == 1
        for count in (1, 2):
            with pytest.raises(WrongExpectedVersion):
                await store.write_messages(
                    stream, [_event() for _ in range(count)], expected_version=top
                )
        assert await store.stream_version(stream) == 0

    # --- concurrency ---------------------------------------------------------------------

    async def test_eight_writers_race_on_one_stream(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-race"
        total, writers = 64, 8
        wins: dict[int, int] = {}

        async def writer(number: int) -> None:
            while True:
                version = await store.stream_version(stream)
                expected = -1 if version is None else version
                if expected + 1 >= total:
                    return
                try:
                    position = await store.write_message(
                        stream, NewMessage("Won", {"writer": number}), expected
                    )
                except WrongExpectedVersion:
                    continue
                assert position == expected + 1
                assert position not in wins, f"two writers won position {position}"
                wins[position] = number

        await asyncio.gather(*(writer(n) for n in range(writers)))
        assert sorted(wins) == list(range(total))
        read = await store.get_stream_messages(stream, batch_size=-1)
        assert [m.position for m in read] == list(range(total))
        assert [m.data["writer"] for m in read] == [wins[p] for p in range(total)]
        assert len({m.id for m in read}) == total

    async def test_concurrent_writers_to_many_streams(self, store: MessageStore) -> None:
        category = unique_category()

        async def writer(number: int) -> None:
            for i in range(10):
                await store.write_message(f"{category}-{number}", _event(i), i - 1)

        await asyncio.gather(*(writer(n) for n in range(8)))
        everything = await store.get_category_messages(category, batch_size=-1)
        assert len(everything) == 80
        positions = [m.global_position for m in everything]
        assert positions == sorted(set(positions))

    async def test_a_conflict_among_concurrent_writes_fails_only_its_writer(
        self, store: MessageStore
    ) -> None:
        categories = [unique_category() for _ in range(4)]
        streams = [f"{c}-{n}" for c in categories for n in range(3)]
        await store.write_message(streams[5], _event())
        taken = _event()
        await store.write_message(streams[0], taken)
        writes = [store.write_message(s, _event(), -1) for s in streams[1:]]
        writes.append(store.write_message(f"{categories[0]}-dup", taken))
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert isinstance(results[4], WrongExpectedVersion) and results[4].actual == 0
        assert isinstance(results[-1], DuplicateMessageId)
        assert [r for i, r in enumerate(results[:-1]) if i != 4] == [0] * 10
        for stream in streams:
            assert await store.stream_version(stream) == 0

    async def test_concurrent_batches_in_one_category(self, store: MessageStore) -> None:
        category = unique_category()

        async def writer(number: int) -> None:
            for round_ in range(3):
                batch = [_event(i) for i in range(3)]
                await store.write_messages(f"{category}-{number}", batch, round_ * 3 - 1)

        await asyncio.gather(*(writer(n) for n in range(6)))
        for number in range(6):
            read = await store.get_stream_messages(f"{category}-{number}")
            assert [m.position for m in read] == list(range(9))

    # --- bad input -----------------------------------------------------------------------

    @pytest.mark.parametrize("name", ["", " ", "a b-1", "-1", "cat-", ":x-1", 42, None])
    async def test_invalid_stream_names(self, store: MessageStore, name: Any) -> None:
        with pytest.raises(InvalidStreamName):
            await store.write_message(name, _event())
        with pytest.raises(InvalidStreamName):
            await store.get_stream_messages(name)
        with pytest.raises(InvalidStreamName):
            await store.stream_version(name)

    @pytest.mark.parametrize(
        ("message", "fragment"),
        [
            (NewMessage("A", [1, 2]), "must be a JSON object"),  # type: ignore[arg-type]
            (NewMessage("A", "text"), "must be a JSON object"),  # type: ignore[arg-type]
            (NewMessage("A", {}, [1]), "metadata"),  # type: ignore[arg-type]
            (NewMessage("A", {}, {"when": datetime.now(UTC)}), "not JSON-serializable"),
            (NewMessage("A", {}, {"set": {1, 2}}), "not JSON-serializable"),
            (NewMessage("A", {"x": object()}), "not JSON-serializable"),
            (NewMessage("A", {"big": 2**70}), "not JSON-serializable"),
            (NewMessage("A", {"nul": "a\x00b"}), "NUL"),
            (NewMessage("", {}), "type"),
            (NewMessage("A", {}, None, id="not-a-uuid"), "must be a UUID"),
        ],
    )
    async def test_invalid_messages_write_nothing(
        self, store: MessageStore, message: NewMessage, fragment: str
    ) -> None:
        stream = f"{unique_category()}-1"
        with pytest.raises(InvalidMessage, match=fragment):
            await store.write_messages(stream, [_event(), message])
        assert await store.stream_version(stream) is None

    async def test_invalid_write_arguments(self, store: MessageStore) -> None:
        stream = f"{unique_category()}-1"
        with pytest.raises(InvalidMessage, match="empty"):
            await store.write_messages(stream, [])
        with pytest.raises(InvalidMessage, match="NewMessage"):
            await store.write_message(stream, {"type": "A", "data": {}})  # type: ignore[arg-type]
        with pytest.raises(InvalidStoreArgument, match="expected_version"):
            await store.write_message(stream, _event(), expected_version=-2)
        with pytest.raises(InvalidStoreArgument, match="expected_version"):
            await store.write_message(stream, _event(), expected_version="0")  # type: ignore[arg-type]
        assert await store.stream_version(stream) is None

    async def test_invalid_read_arguments_use_message_db_text(self, store: MessageStore) -> None:
        category = unique_category()
        stream = f"{category}-1"
        cases: list[tuple[Callable[[], Awaitable[Any]], type[Exception], str]] = [
            (
                lambda: store.get_stream_messages(category),
                InvalidStreamName,
                f"Must be a stream name: {category}",
            ),
            (
                lambda: store.get_category_messages(stream),
                InvalidStreamName,
                f"Must be a category: {stream}",
            ),
            (
                lambda: store.get_category_messages(category, correlation="x-1"),
                InvalidStoreArgument,
                "Correlation must be a category (Correlation: x-1)",
            ),
            (
                lambda: store.get_category_messages(category, consumer_group_member=1),
                InvalidStoreArgument,
                "Consumer group member and size must be specified "
                "(Consumer Group Member: 1, Consumer Group Size: <NULL>)",
            ),
            (
                lambda: store.get_category_messages(
                    category, consumer_group_member=0, consumer_group_size=0
                ),
                InvalidStoreArgument,
                "Consumer group size must not be less than 1 "
                "(Consumer Group Member: 0, Consumer Group Size: 0)",
            ),
            (
                lambda: store.get_category_messages(
                    category, consumer_group_member=-1, consumer_group_size=2
                ),
                InvalidStoreArgument,
                "Consumer group member must not be less than 0 "
                "(Consumer Group Member: -1, Consumer Group Size: 2)",
            ),
            (
                lambda: store.get_category_messages(
                    category, consumer_group_member=2, consumer_group_size=2
                ),
                InvalidStoreArgument,
                "Consumer group member must be less than the group size "
                "(Consumer Group Member: 2, Consumer Group Size: 2)",
            ),
            (lambda: store.get_last_stream_message(stream, 7), InvalidStoreArgument, "type"),  # type: ignore[arg-type]
            (
                lambda: store.get_stream_messages(stream, batch_size=-2),
                InvalidStoreArgument,
                "batch_size",
            ),
            (
                lambda: store.get_stream_messages(stream, position="0"),  # type: ignore[arg-type]
                InvalidStoreArgument,
                "position",
            ),
        ]
        for call, error, text in cases:
            with pytest.raises(error) as caught:
                await call()
            assert text in str(caught.value)
            assert caught.value.exit_code == 2  # type: ignore[attr-defined]

    # --- thalo's own tables --------------------------------------------------------------

    async def test_own_tables_transaction(self, store: MessageStore) -> None:
        table = f"conformance_{uuid.uuid4().hex[:10]}"
        await store.init()
        async with store.transaction() as tx:
            assert tx.dialect == store.dialect
            await tx.execute(f"CREATE TABLE {table} (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
            await tx.execute(f"INSERT INTO {table} VALUES (%s, %s)", ("a", 1))
        with pytest.raises(RuntimeError, match="boom"):
            async with store.transaction() as tx:
                await tx.execute(f"INSERT INTO {table} VALUES (%s, %s)", ("b", 2))
                raise RuntimeError("boom")
        async with store.transaction() as tx:
            rows = await tx.execute(f"SELECT name, n FROM {table} WHERE name LIKE %s", ("%",))
            assert [tuple(row) for row in rows] == [("a", 1)]
            await tx.execute(f"DROP TABLE {table}")
        # Messages can still be written after the transaction released the store.
        assert await store.write_message(f"{unique_category()}-1", _event()) == 0

    async def test_read_only_transaction_reads_and_refuses_writes(
        self, store: MessageStore
    ) -> None:
        table = f"conformance_{uuid.uuid4().hex[:10]}"
        await store.init()
        async with store.transaction() as tx:
            await tx.execute(f"CREATE TABLE {table} (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
            await tx.execute(f"INSERT INTO {table} VALUES (%s, %s)", ("a", 1))
        async with store.transaction(read_only=True) as tx:
            rows = await tx.execute(f"SELECT name, n FROM {table}")
            assert [tuple(row) for row in rows] == [("a", 1)]
            with pytest.raises(StoreError):
                await tx.execute(f"INSERT INTO {table} VALUES (%s, %s)", ("b", 2))
        async with store.transaction() as tx:
            rows = await tx.execute(f"SELECT name FROM {table}")
            assert [tuple(row) for row in rows] == [("a",)]
            await tx.execute(f"DROP TABLE {table}")


_RACER = textwrap.dedent(
    """
    import asyncio, json, sys
    from thalo.core import NewMessage
    from thalo.errors import WrongExpectedVersion
    from thalo.store import open_store

    async def main(url, stream, total, name):
        wins = []
        async with open_store(url) as store:
            while True:
                version = await store.stream_version(stream)
                expected = -1 if version is None else version
                if expected + 1 >= total:
                    break
                try:
                    wins.append(await store.write_message(
                        stream, NewMessage("Won", {"process": name}), expected))
                except WrongExpectedVersion:
                    pass
        print(json.dumps(wins))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    """
)


class ProcessRaceConformance:
    """Two OS processes race on one stream with expected versions: one winner per version."""

    total = 200

    async def test_two_processes_race_on_one_stream(self, store_url: str) -> None:
        stream = f"{unique_category()}-race"
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", _RACER, store_url, stream, str(self.total), name],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a", "b")
        ]
        wins: dict[str, list[int]] = {}
        try:
            for name, racer in zip(("a", "b"), racers, strict=True):
                out, err = await asyncio.to_thread(racer.communicate, timeout=120)
                assert racer.returncode == 0, err
                wins[name] = json.loads(out)
        finally:
            for racer in racers:
                if racer.poll() is None:
                    racer.kill()
                racer.communicate()
        every = sorted(wins["a"] + wins["b"])
        assert every == list(range(self.total)), "a version was won twice or never"
        async with open_store(store_url) as store:
            read = await store.get_stream_messages(stream, batch_size=-1)
        assert [m.position for m in read] == list(range(self.total))
        for message in read:
            assert message.position in wins[message.data["process"]]
