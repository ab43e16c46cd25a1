"""Installing Message DB from the official package, and ``thalo store init`` end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner

from thalo.cli.main import cli
from thalo.core import NewMessage
from thalo.errors import StoreNotInitialized, StoreUnavailable
from thalo.store import open_store
from thalo.store.installer import find_message_db, install_message_db, install_order

ROOT = Path(__file__).resolve().parents[2]


def test_install_order_follows_install_sh() -> None:
    database = find_message_db(ROOT)
    order = install_order(database)
    # install.sh: role, (createdb), schema, extension, table, then the sourced scripts.
    assert order[:4] == [
        "roles/message-store.sql",
        "schema/message-store.sql",
        "extensions/pgcrypto.sql",
        "tables/messages.sql",
    ]
    assert order.index("types/message.sql") < order.index("functions/write-message.sql")
    assert order.index("functions/hash-64.sql") < order.index("indexes/messages-category.sql")
    assert order[-1] == "privileges/views.sql"
    every_sql_file = {p.relative_to(database).as_posix() for p in database.rglob("*.sql")}
    benchmarks = {"benchmark_get.sql", "benchmark_write.sql"}
    assert set(order) == every_sql_file - benchmarks
    functions_script = (database / "install-functions.sh").read_text()
    listed = re.findall(r"\$base/(functions/[\w-]+\.sql)", functions_script)
    assert [name for name in order if name.startswith("functions/")] == listed


def test_package_not_found(tmp_path: Path) -> None:
    with pytest.raises(StoreNotInitialized, match="npm install @eventide/message-db"):
        find_message_db(tmp_path)
    with pytest.raises(StoreNotInitialized, match="is not the @eventide/message-db package"):
        find_message_db(explicit=tmp_path)


@pytest.mark.postgres
def test_cli_init_postgres_is_idempotent(fresh_database: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["store", "init", fresh_database, "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["already_installed"] is False
    assert "ran functions/write-message.sql" in report["steps"]
    assert "created schema thalo (thalo's own tables)" in report["steps"]
    second = runner.invoke(cli, ["store", "init", fresh_database])
    assert second.exit_code == 0, second.output
    assert "already installed" in second.output


@pytest.mark.postgres
async def test_installed_database_is_a_working_message_db(fresh_database: str) -> None:
    report = await install_message_db(fresh_database, ROOT / "node_modules/@eventide/message-db")
    assert not report.already_installed and report.version == "1.3.0"
    async with open_store(fresh_database) as store:
        assert await store.write_message("installed-1", NewMessage("A", {}), -1) == 0
        assert (await store.init()) == ["created schema thalo (thalo's own tables)"]
    with psycopg.connect(fresh_database) as connection:
        row = connection.execute("SELECT rolname FROM pg_roles WHERE rolname = 'message_store'")
        assert row.fetchone() == ("message_store",)


@pytest.mark.postgres
def test_cli_init_without_npm_says_what_to_do(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no node_modules above it
    monkeypatch.setenv("THALO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python and thalo, no npm
    result = CliRunner().invoke(cli, ["store", "init", fresh_database])
    assert result.exit_code != 0
    assert isinstance(result.exception, StoreNotInitialized)
    assert "npm (Node.js) is not installed" in str(result.exception)
    assert "npm install @eventide/message-db@1.3.1" in str(result.exception)


@pytest.mark.postgres
@pytest.mark.slow
def test_cli_init_outside_a_checkout_fetches_the_pinned_package(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11, item 26: after a plain `pip install thalo`, `store init` just works."""
    monkeypatch.chdir(tmp_path)  # no node_modules above it
    cache = tmp_path / "cache"
    monkeypatch.setenv("THALO_CACHE_DIR", str(cache))
    result = CliRunner().invoke(cli, ["store", "init", fresh_database, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # the npm package 1.3.1 carries Message DB 1.3.0 (its database/VERSION.txt)
    assert report["message_db_version"] == "1.3.0"
    installed = cache / "npm" / "node_modules" / "@eventide" / "message-db" / "package.json"
    assert json.loads(installed.read_text())["version"] == "1.3.1"
    assert any("installed @eventide/message-db@1.3.1" in step for step in report["steps"])
    assert (cache / "npm" / "node_modules" / "@eventide" / "message-db").is_dir()
    assert not (tmp_path / "node_modules").exists()
    # the pinned version is package.json's
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert pinned["@eventide/message-db"] == "1.3.1"


def test_cli_init_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "thalo.db"
    result = CliRunner().invoke(cli, ["--store", f"sqlite:///{path}", "store", "init"])
    assert result.exit_code == 0, result.output
    assert path.is_file()
    again = CliRunner().invoke(cli, ["store", "init", f"sqlite:///{path}", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["steps"]


def test_cli_exit_codes_through_main(tmp_path: Path, closed_port: int) -> None:
    """Through the real entry point: errors become their documented exit codes."""

    def thalo(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "thalo.cli.main", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)

    bad = thalo("store", "init", "mysql://x")
    assert bad.returncode == 2 and "unknown scheme 'mysql'" in bad.stderr
    down = thalo("store", "init", f"postgresql://u@127.0.0.1:{closed_port}/x")
    assert down.returncode == 5 and "cannot connect to PostgreSQL" in down.stderr


@pytest.mark.postgres
async def test_init_refused_without_privileges(fresh_database: str) -> None:
    """A role that may not create roles or schemas gets an actionable refusal; nothing is left."""
    role = f"thalo_weak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_database, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
    weak = urlunsplit(urlsplit(fresh_database)._replace(netloc=_with_user(fresh_database, role)))
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await install_message_db(weak, ROOT / "node_modules/@eventide/message-db")
        assert "connect as a superuser" in str(caught.value)
        with psycopg.connect(fresh_database) as connection:
            row = connection.execute("SELECT to_regnamespace('message_store')").fetchone()
            assert row == (None,)
    finally:
        with psycopg.connect(fresh_database, autocommit=True) as connection:
            connection.execute(f"DROP ROLE {role}")


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{user}@{host}"
