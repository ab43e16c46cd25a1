"""open_store: URL forms, and the errors a user gets for a wrong URL or an unreachable server."""

from __future__ import annotations

from pathlib import Path

import pytest

from thalo.errors import StoreNotInitialized, StoreUnavailable, StoreURLInvalid
from thalo.store import MessageStore, open_store, redact_url
from thalo.store.url import parse_sqlite_url
from thalo.testing.postgres import with_database


@pytest.mark.parametrize(
    ("url", "path", "synchronous"),
    [
        ("sqlite:///rel/file.db", Path("rel/file.db"), "full"),
        ("sqlite:////abs/file.db", Path("/abs/file.db"), "full"),
        ("sqlite:///file.db?synchronous=NORMAL", Path("file.db"), "normal"),
        ("sqlite://:memory:", None, "full"),
        ("sqlite:///:memory:", None, "full"),
    ],
)
def test_sqlite_url_forms(url: str, path: Path | None, synchronous: str) -> None:
    location = parse_sqlite_url(url)
    assert (location.path, location.synchronous) == (path, synchronous)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://localhost/db", "unknown scheme 'mysql'"),
        ("file.db", "no scheme"),
        ("", "non-empty"),
        ("sqlite://", "sqlite:///relative/path.db"),
        ("sqlite://host/file.db", "sqlite:///relative/path.db"),
        ("sqlite:///f.db?synchronous=off", "synchronous must be 'full' or 'normal'"),
        ("sqlite:///f.db?cache=shared", "unknown option(s) cache"),
        ("postgresql://u@h/db?bogus_param=1", "invalid PostgreSQL URL"),
    ],
)
async def test_invalid_urls(url: str, fragment: str) -> None:
    with pytest.raises(StoreURLInvalid) as caught:
        await open_store(url)
    assert fragment in str(caught.value)
    assert caught.value.exit_code == 2


def test_redact_url_hides_the_password() -> None:
    assert redact_url("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact_url("postgresql://me@db/x") == "postgresql://me@db/x"


async def test_unreachable_server(closed_port: int) -> None:
    url = f"postgresql://thalo:pw@127.0.0.1:{closed_port}/nowhere"
    with pytest.raises(StoreUnavailable) as caught:
        await open_store(url)
    message = str(caught.value)
    assert (
        "cannot connect to PostgreSQL" in message and "Check that the server is running" in message
    )
    assert "pw" not in message and caught.value.exit_code == 5


@pytest.mark.postgres
async def test_database_without_message_db(fresh_database: str) -> None:
    with pytest.raises(StoreNotInitialized, match="thalo store init"):
        await open_store(fresh_database)


@pytest.mark.postgres
async def test_missing_database(postgres_url: str) -> None:
    url = with_database(postgres_url, "thalo_no_such_database")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        await open_store(url)


async def test_open_store_returns_a_message_store(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        assert isinstance(store, MessageStore)
        assert store.dialect == "sqlite"
    finally:
        await store.close()
