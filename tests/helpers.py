"""Helpers shared by the test areas (the tests directory is on sys.path via its conftest)."""

from __future__ import annotations

import asyncio
import os
import re
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


def readme_blocks(heading: str, lang: str = "bash") -> list[str]:
    """The ``lang`` code blocks of the README's ``## heading`` section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def run_readme_script(
    script: str, cwd: Path, *, flags: str = "-euo", timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs a README bash ``script`` as a user would: this Python's ``thalo`` first on
    PATH, the default store (no ``THALO_STORE``), ``env`` added."""
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    environment.pop("THALO_STORE", None)
    return subprocess.run(
        ["bash", flags, "pipefail", "-c", script],
        cwd=cwd,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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


_V2_ESDL = (
    (
        "deposit_funds(amount: Long) -> DepositedFunds",
        "deposit_funds(amount: Long, memo: String?) -> DepositedFunds",
    ),
    (
        "event DepositedFunds {\n  amount: Long\n  balance: Long\n",
        "event DepositedFunds version 2 {\n  amount: Long\n  balance: Long\n"
        '  memo: String = "(none)"\n  currency: String\n',
    ),
)


def _edit(path: Path, edits: tuple[tuple[str, str], ...]) -> Path:
    """Applies ``(old, new)`` replacements to ``path``; each ``old`` must be there."""
    text = path.read_text()
    for old, new in edits:
        assert old in text, f"{path.name} no longer has {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    return path


_PY_UPCAST_HOOK = (
    "    def upcast(self, event_type: str, version: int, data: dict) -> dict:  "
    "# type: ignore[type-arg]\n"
    "        if event_type == 'DepositedFunds' and version < 2:\n"
    "            return {**data, 'currency': 'EUR'}\n"
    "        return data\n"
)


def bank_account_v2(target: Path, *, hook: bool = True) -> Path:
    """bank_account 0.2.0: ``DepositedFunds`` at schema version 2 gained ``memo`` (an ESDL
    default fills old events) and ``currency`` (the module's upcast hook fills it); the
    state keeps every deposit, so tests can see what replay made of old events.
    ``hook=False`` leaves the hook out: old deposits then lack ``currency``."""
    project = bumped_copy(EXAMPLES / "bank_account", target, "0.2.0")
    esdl = _edit(project / "bank_account.esdl", _V2_ESDL)
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
            + (_PY_UPCAST_HOOK if hook else ""),
        )
    )
    from thalo.esdl import generate_python, parse_file

    (project / "bank_account_schema.py").write_text(generate_python(parse_file(esdl)))
    return project


_TS_V2_EDITS = (
    ("  balance = 0;\n", "  balance = 0;\n  deposits: [number, string, string][] = [];\n"),
    ("{ amount }: DepositFundsCommand", "{ amount, memo }: DepositFundsCommand"),
    (
        "return DepositedFunds({ amount, balance: this.balance + amount });",
        "return DepositedFunds({\n"
        '      amount, balance: this.balance + amount, memo: memo ?? "", currency: "CHF",\n'
        "    });",
    ),
    (
        "  applyDepositedFunds(event: DepositedFunds) {\n    this.balance = event.balance;\n",
        "  override upcast(type: string, version: number, data: Record<string, unknown>) {\n"
        '    if (type === "DepositedFunds" && version < 2) return { ...data, currency: "EUR" };\n'
        "    return data;\n  }\n\n"
        "  applyDepositedFunds(event: DepositedFunds) {\n    this.balance = event.balance;\n"
        "    this.deposits.push([event.amount, event.memo, event.currency]);\n",
    ),
)


def bank_account_ts_v2(target: Path) -> Path:
    """bank_account-ts 0.2.0, the TypeScript twin of :func:`bank_account_v2` (same ESDL,
    an ``upcast`` override filling ``currency``), with a unit test of ``givenStored``."""
    project = bumped_copy(EXAMPLES / "bank_account-ts", target, "0.2.0")
    esdl = _edit(project / "bank_account.esdl", _V2_ESDL)
    _edit(project / "src" / "bank_account.ts", _TS_V2_EDITS)
    (project / "test" / "bank_account.test.ts").write_text(_TS_V2_TEST)
    from thalo.esdl import generate_typescript, parse_file

    generated = generate_typescript(parse_file(esdl), source_name="bank_account.esdl")
    (project / "src" / "bank_account_schema.ts").write_text(generated)
    return project


_TS_V2_TEST = """\
import assert from "node:assert/strict";
import { test } from "node:test";
import { AggregateTest } from "@thalo/sdk/testing";
import { BankAccount } from "../src/bank_account.js";
import { OpenedAccount } from "../src/bank_account_schema.js";

test("a deposit stored at schema version 1 gets the default and the upcast hook", () => {
  const t = new AggregateTest(BankAccount).given(OpenedAccount({ initial_balance: 10 }));
  t.givenStored("DepositedFunds", { amount: 5, balance: 15 }, 1);
  t.givenStored("DepositedFunds", { amount: 1, balance: 16, memo: "m", currency: "CHF" }, 2);
  assert.deepEqual(t.state.deposits, [[5, "(none)", "EUR"], [1, "m", "CHF"]]);
  assert.equal(t.state.balance, 16);
});
"""
