"""Helpers shared by the test areas (the tests directory is on sys.path via its conftest)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CHAOS = ROOT / "tests" / "wasm" / "guests" / "chaos"
LIAR = ROOT / "tests" / "runtime" / "guests" / "liar"
HOSTILE = ROOT / "tests" / "guests" / "hostile"


def unique(prefix: str = "e") -> str:
    """An id no other test uses (tests on the shared Message DB database need them)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def bumped_copy(project: Path, target: Path, version: str) -> Path:
    """A copy of an example project whose schema (and generated module) say ``version``."""
    shutil.copytree(
        project,
        target,
        ignore=shutil.ignore_patterns("dist", "__pycache__", "node_modules", "build"),
    )
    for path in [*target.glob("*.esdl"), *target.glob("*_schema.py")]:
        path.write_text(path.read_text().replace("0.1.0", version))
    return target


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A new database with Message DB on the server of ``base_url``; dropped afterwards."""
    import psycopg

    from thalo.store.installer import install_message_db

    name = f"thalo_rt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(base_url)._replace(path=f"/{name}"))
    try:
        asyncio.run(install_message_db(url))
        yield url
    finally:
        with psycopg.connect(base_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
