"""Install Message DB into a PostgreSQL database from the official ``@eventide/message-db`` package.

The package's ``database/install.sh`` runs ``psql -f`` on its SQL files in a
fixed order (role, schema, extension, table, types, functions, indexes, views,
privileges), through helper scripts it ``source``s. thalo reads that order from
the scripts themselves, so a new package version installs the way its authors
wrote it, and runs the same files in one transaction on the target database.
Two deliberate departures: ``createdb`` is not run (the URL names the
database), and the ``pgcrypto`` extension is skipped when ``gen_random_uuid()``
already exists (built into PostgreSQL 13 and later; Message DB uses pgcrypto
for nothing else).
"""

from __future__ import annotations

__all__ = [
    "PACKAGE_NAME",
    "InstallReport",
    "find_message_db",
    "install_message_db",
    "install_order",
]

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from thalo.errors import StoreError, StoreNotInitialized, StoreUnavailable
from thalo.store.messagedb import connection_options, unavailable
from thalo.store.url import redact_url

PACKAGE_NAME = "@eventide/message-db"
_PGCRYPTO = "extensions/pgcrypto.sql"
_TABLE = "tables/messages.sql"

_FUNCTION_START = re.compile(r"^\s*function\s+([\w-]+)\s*(?:\(\s*\))?\s*\{\s*$")
_SQL_FILE = re.compile(r"\$base/([\w./-]+\.sql)")
_SOURCE = re.compile(r"^\s*source\s+\$base/([\w./-]+\.sh)\s*$")


@dataclass(slots=True)
class InstallReport:
    """What ``install_message_db`` did, in order, for the CLI to print."""

    database_dir: Path | None
    version: str
    already_installed: bool = False
    steps: list[str] = field(default_factory=list)


def find_message_db(start: Path | None = None, explicit: Path | None = None) -> Path:
    """The package's ``database`` folder: ``explicit`` (package or database folder) or found
    in ``node_modules`` walking up from ``start`` (default: the current directory)."""
    if explicit is not None:
        for candidate in (explicit / "database", explicit):
            if (candidate / "install.sh").is_file():
                return candidate.resolve()
        raise StoreNotInitialized(
            f"{explicit} is not the {PACKAGE_NAME} package (no database/install.sh in it)"
        )
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "node_modules" / PACKAGE_NAME / "database"
        if (candidate / "install.sh").is_file():
            return candidate
    raise StoreNotInitialized(
        f"cannot find the {PACKAGE_NAME} package in node_modules above {here}: run "
        f"`npm install {PACKAGE_NAME}` (or `npm ci` in the thalo repository), or pass "
        "--message-db PATH to the package"
    )


def _script_order(script: Path, base: Path, seen: set[Path]) -> list[str]:
    """The SQL files a shell script runs, in call order (following ``source``)."""
    if script in seen:
        return []
    seen.add(script)
    functions: dict[str, list[str]] = {}
    order: list[str] = []
    current: str | None = None
    for line in script.read_text().splitlines():
        if current is not None:
            if line.strip() == "}":
                current = None
            else:
                functions[current] += _SQL_FILE.findall(line)
            continue
        started = _FUNCTION_START.match(line)
        if started:
            current = started.group(1)
            functions[current] = []
            continue
        sourced = _SOURCE.match(line)
        if sourced:
            order += _script_order(base / sourced.group(1), base, seen)
            continue
        word = line.strip()
        if word in functions:
            order += functions[word]
        else:
            order += _SQL_FILE.findall(line)
    return order


def install_order(database_dir: Path) -> list[str]:
    """The SQL files ``install.sh`` runs, relative to ``database_dir``, in its order."""
    order = _script_order(database_dir / "install.sh", database_dir, set())
    missing = [name for name in order if not (database_dir / name).is_file()]
    if not order or missing:
        raise StoreError(
            f"cannot read the install order from {database_dir / 'install.sh'}"
            + (f": missing {', '.join(missing)}" if missing else "")
        )
    return order


async def _scalar(connection: psycopg.AsyncConnection[Any], sql: str) -> object:
    cursor = await connection.execute(sql)
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def install_message_db(url: str, package: Path | None = None) -> InstallReport:
    """Install Message DB into the database at ``url``; idempotent (reports when already there).

    ``package``: the package (or its ``database`` folder); default: found in
    ``node_modules`` above the current directory, looked for only when an
    install is needed. Raises StoreUnavailable when the server refuses,
    StoreNotInitialized when the package cannot be found, StoreError when a
    script fails (nothing is left half-installed: everything runs in one
    transaction).
    """
    kwargs = connection_options(url)
    kwargs["options"] += " -c client_min_messages=warning"
    try:
        connection = await psycopg.AsyncConnection.connect(url, **kwargs)
    except psycopg.Error as exc:
        raise unavailable(url, exc) from exc
    async with connection:
        installed = await _scalar(
            connection,
            "SELECT to_regprocedure('message_store.write_message(varchar,varchar,"
            "varchar,jsonb,jsonb,bigint)') IS NOT NULL",
        )
        if installed:
            version = str(await _scalar(connection, "SELECT message_store_version()"))
            return InstallReport(None, version, already_installed=True)
        database_dir = find_message_db(explicit=package)
        order = install_order(database_dir)
        report = InstallReport(database_dir, (database_dir / "VERSION.txt").read_text().strip())
        has_uuid = await _scalar(
            connection, "SELECT to_regprocedure('gen_random_uuid()') IS NOT NULL"
        )
        has_table = await _scalar(
            connection, "SELECT to_regclass('message_store.messages') IS NOT NULL"
        )
        current = ""
        try:
            async with connection.transaction():
                for name in order:
                    current = name
                    if name == _PGCRYPTO and has_uuid:
                        report.steps.append(f"skipped {name}: gen_random_uuid() is built in")
                        continue
                    if name == _TABLE and has_table:
                        report.steps.append(f"skipped {name}: message_store.messages exists")
                        continue
                    await connection.execute((database_dir / name).read_text().encode())
                    report.steps.append(f"ran {name}")
        except pg_errors.InsufficientPrivilege as exc:
            raise StoreUnavailable(
                f"the server refused {current} in {redact_url(url)}: {exc.diag.message_primary}. "
                "Installing Message DB creates a role, a schema and grants: connect as a "
                "superuser (or the database owner with CREATEROLE)"
            ) from exc
        except psycopg.OperationalError as exc:
            raise unavailable(url, exc) from exc
        except psycopg.Error as exc:
            raise StoreError(
                f"installing Message DB failed at {current}: {exc.diag.message_primary or exc}; "
                "nothing was installed"
            ) from exc
    return report
