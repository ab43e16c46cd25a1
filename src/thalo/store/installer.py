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
    "MESSAGE_DB_VERSION",
    "PACKAGE_NAME",
    "InstallReport",
    "fetch_message_db",
    "find_message_db",
    "install_message_db",
    "install_order",
]

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from thalo.errors import StoreError, StoreNotInitialized, StoreUnavailable
from thalo.store.messagedb import connection_options, unavailable
from thalo.store.url import redact_url

PACKAGE_NAME = "@eventide/message-db"
# The version thalo installs when no package is at hand (package.json pins the same).
MESSAGE_DB_VERSION = "1.3.1"
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


def fetch_message_db(root: Path | None = None) -> tuple[Path, str | None]:
    """The pinned package's ``database`` folder in thalo's cache, installed there with npm
    first when missing: (folder, what was done, or None when it was there already).

    For ``pip install thalo`` users outside a checkout, who have no ``node_modules``.
    Raises StoreNotInitialized with the manual steps when npm is missing or fails.
    """
    root = root or _cache_dir() / "npm"
    database = root / "node_modules" / PACKAGE_NAME / "database"
    if (database / "install.sh").is_file():
        return database, None
    wanted = f"{PACKAGE_NAME}@{MESSAGE_DB_VERSION}"
    manual = (
        f"install it by hand (`npm install {wanted}`) and pass --message-db "
        f"node_modules/{PACKAGE_NAME}, or run thalo store init where node_modules holds it"
    )
    npm = shutil.which("npm")
    if npm is None:
        raise StoreNotInitialized(
            f"cannot find the {PACKAGE_NAME} package, and npm (Node.js) is not installed "
            f"to fetch it: {manual}"
        )
    root.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund", wanted],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StoreNotInitialized(f"npm could not install {wanted}: {exc}; {manual}") from exc
    if done.returncode != 0 or not (database / "install.sh").is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise StoreNotInitialized(
            f"npm could not install {wanted} into {root}: {' / '.join(tail)}; {manual}"
        )
    return database, f"installed {wanted} into {root} with npm (once; kept in thalo's cache)"


def _cache_dir() -> Path:
    """``$THALO_CACHE_DIR`` if set, else ``~/.cache/thalo`` (as the compile cache)."""
    configured = os.environ.get("THALO_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "thalo"


async def install_message_db(url: str, package: Path | None = None) -> InstallReport:
    """Install Message DB into the database at ``url``; idempotent (reports when already there).

    ``package``: the package (or its ``database`` folder); default: found in
    ``node_modules`` above the current directory, else the pinned version in
    thalo's cache (installed there with npm when missing, which the report
    says), looked for only when an install is needed. Raises StoreUnavailable
    when the server refuses, StoreNotInitialized when the package cannot be
    found or fetched, StoreError when a
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
        fetched: str | None = None
        try:
            database_dir = find_message_db(explicit=package)
        except StoreNotInitialized:
            if package is not None:
                raise
            database_dir, fetched = fetch_message_db()
        order = install_order(database_dir)
        report = InstallReport(database_dir, (database_dir / "VERSION.txt").read_text().strip())
        if fetched is not None:
            report.steps.append(fetched)
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
