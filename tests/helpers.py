"""Helpers shared by the test areas (the tests directory is on sys.path via its conftest)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
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


THALO = str(Path(sys.executable).with_name("thalo"))


def thalo_cli(
    *args: str,
    store: str,
    cwd: Path,
    check_code: int | None = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``thalo`` entry point on ``store`` (with ``env`` added to the
    environment); assert its exit code unless None."""
    env = {**os.environ, "THALO_STORE": store, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [THALO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check_code is not None:
        assert proc.returncode == check_code, (
            f"thalo {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def bank_account_v2(target: Path) -> Path:
    """bank_account 0.2.0: ``DepositedFunds`` at schema version 2 gained ``memo`` (an ESDL
    default fills old events) and ``currency`` (the module's upcast hook fills it); the
    state keeps every deposit, so tests can see what replay made of old events."""
    project = bumped_copy(EXAMPLES / "bank_account", target, "0.2.0")
    esdl = project / "bank_account.esdl"
    esdl.write_text(
        esdl.read_text()
        .replace(
            "deposit_funds(amount: Long) -> DepositedFunds",
            "deposit_funds(amount: Long, memo: String?) -> DepositedFunds",
        )
        .replace(
            "event DepositedFunds {\n  amount: Long\n  balance: Long\n",
            "event DepositedFunds version 2 {\n  amount: Long\n  balance: Long\n"
            '  memo: String = "(none)"\n  currency: String\n',
        )
    )
    module = project / "bank_account.py"
    module.write_text(
        module.read_text()
        .replace(
            "        self.balance = 0\n",
            "        self.balance = 0\n        self.deposits: list[list[object]] = []\n",
        )
        .replace(
            "def handle_deposit_funds(self, ctx: Context, amount: int) -> DepositedFunds:",
            "def handle_deposit_funds(\n"
            "        self, ctx: Context, amount: int, memo: str | None\n"
            "    ) -> DepositedFunds:",
        )
        .replace(
            "return DepositedFunds(amount=amount, balance=self.balance + amount)",
            "return DepositedFunds(\n"
            "            amount=amount, balance=self.balance + amount, memo=memo or '', "
            "currency='CHF'\n        )",
        )
        .replace(
            "    def apply_deposited_funds(self, event: DepositedFunds) -> None:\n"
            "        self.balance = event.balance\n",
            "    def apply_deposited_funds(self, event: DepositedFunds) -> None:\n"
            "        self.balance = event.balance\n"
            "        self.deposits.append([event.amount, event.memo, event.currency])\n\n"
            "    def upcast(self, event_type: str, version: int, data: dict) -> dict:  "
            "# type: ignore[type-arg]\n"
            "        if event_type == 'DepositedFunds' and version < 2:\n"
            "            return {**data, 'currency': 'EUR'}\n"
            "        return data\n",
        )
    )
    from thalo.esdl import generate_python, parse_file

    (project / "bank_account_schema.py").write_text(generate_python(parse_file(esdl)))
    return project
