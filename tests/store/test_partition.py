"""hash_64 and consumer-group membership: identical to Message DB's own SQL."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalo.store import consumer_group_member, hash_64
from thalo.store.messagedb import connection_options

VALUES = ["", "a", "123", "account", "acc-1", "ünïcödé", "日本", "🎉", "x" * 500, "a+b", "-1"]


def test_hash_64_known_values() -> None:
    # md5("") = d41d8cd98f00b204e9800998ecf8427e → 0xd41d8cd98f00b204 as a signed int64
    assert hash_64("") == 0xD41D8CD98F00B204 - (1 << 64)
    assert -(1 << 63) <= hash_64("account") < (1 << 63)


def test_consumer_group_member_uses_the_cardinal_id() -> None:
    assert consumer_group_member("account-7+a", 5) == consumer_group_member("account-7", 5)
    assert consumer_group_member("account:command-7", 5) == consumer_group_member("account-7", 5)
    assert consumer_group_member("account", 5) is None
    assert consumer_group_member("account-7", 5) == abs(hash_64("7")) % 5


@pytest.mark.postgres
def test_hash_64_matches_message_db(postgres_url: str) -> None:
    names = [f"category-{value}" for value in VALUES if value] + ["cat-a+b+c", "cat"]
    with psycopg.connect(postgres_url, **connection_options(postgres_url)) as connection:
        for value in VALUES:
            row = connection.execute("SELECT hash_64(%s::varchar)", (value,)).fetchone()
            assert row is not None and row[0] == hash_64(value), value
        for name in names:
            for size in (1, 2, 3, 7, 32767):
                row = connection.execute(
                    "SELECT MOD(@hash_64(cardinal_id(%s::varchar)), %s::smallint)", (name, size)
                ).fetchone()
                assert row is not None and row[0] == consumer_group_member(name, size), name


@pytest.mark.postgres
def test_hash_64_matches_message_db_on_any_text(postgres_url: str) -> None:
    text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))
    with psycopg.connect(postgres_url, **connection_options(postgres_url)) as connection:

        @settings(max_examples=300, deadline=None)
        @given(value=text, size=st.integers(1, 32767))
        def same(value: str, size: int) -> None:
            row = connection.execute(
                "SELECT hash_64(%s::varchar), "
                "MOD(@hash_64(cardinal_id(%s::varchar)), %s::smallint)",
                (value, f"cat-{value}", size),
            ).fetchone()
            assert row == (hash_64(value), consumer_group_member(f"cat-{value}", size))

        same()
