"""Versions through the real `thalo` entry point, on both stores: publish refuses a
breaking version before building it; time travel names the module versions it used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import EXAMPLES
from helpers import thalo_cli as thalo

pytestmark = pytest.mark.wasm


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the bank_account example to edit."""
    target = tmp_path / "bank_account"
    shutil.copytree(
        EXAMPLES / "bank_account", target, ignore=shutil.ignore_patterns("dist", "__pycache__")
    )
    return target


def test_publish_refuses_a_breaking_version_before_building_it(
    cli_store: str, project: Path
) -> None:
    work = project.parent
    thalo("publish", "bank_account", store=cli_store, cwd=work)
    thalo(
        "execute", "BankAccount", "a1", "open_account", '{"initial_balance": 1}',
        store=cli_store, cwd=work,
    )  # fmt: skip
    esdl = project / "bank_account.esdl"
    opened = "event OpenedAccount {\n  initial_balance: "
    esdl.write_text(
        esdl.read_text()
        .replace('version = "0.1.0"', 'version = "0.2.0"')
        .replace(opened + "Long", opened + "Double\n  owner: String")
    )
    refused = thalo("publish", "bank_account", store=cli_store, cwd=work, check_code=2)
    assert "cannot publish BankAccount 0.2.0: it breaks events stored under 0.1.0" in refused.stderr
    assert "! OpenedAccount.owner: added, required (String) — BREAKING" in refused.stderr
    assert "! OpenedAccount.initial_balance: retyped (Long -> Double) — BREAKING" in refused.stderr
    assert not (project / "dist" / "BankAccount-0.2.0.wasm").exists(), "refused before the build"
    as_json = thalo("publish", "bank_account", "--json", store=cli_store, cwd=work, check_code=2)
    error = json.loads(as_json.stdout)["error"]
    assert (error["code"], error["exit_code"]) == ("IncompatibleSchema", 2)
    modules = json.loads(thalo("modules", "--json", store=cli_store, cwd=work).stdout)
    assert [m["version"] for m in modules] == ["0.1.0"]
