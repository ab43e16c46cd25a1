"""Versions through the real `thalo` entry point, on both stores: publish refuses a
breaking version before building it; time travel names the module versions it used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import EXAMPLES, bank_account_v2
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


def test_state_in_the_past_names_the_versions(cli_store: str, project: Path) -> None:
    work = project.parent
    thalo("publish", "bank_account", store=cli_store, cwd=work)

    def execute(command: str, payload: str) -> None:
        thalo("execute", "BankAccount", "a1", command, payload, store=cli_store, cwd=work)

    execute("open_account", '{"initial_balance": 1}')
    execute("deposit_funds", '{"amount": 2}')
    thalo("publish", str(bank_account_v2(work / "v2")), store=cli_store, cwd=work)
    execute("deposit_funds", '{"amount": 3}')

    past = thalo("state", "BankAccount", "a1", "--at", "1", store=cli_store, cwd=work).stdout
    assert past.startswith(
        "BankAccount a1 (version 1, module 0.1.0: the version that wrote the last event replayed)\n"
        "events written by 0.1.0 at 0–1\n"
    )
    state = ("state", "BankAccount", "a1", "--at", "2", "--json")
    late = json.loads(thalo(*state, store=cli_store, cwd=work).stdout)
    assert (late["module_version"], late["module_chosen_by"]) == ("0.2.0", "history")
    assert late["written_by"] == [
        {"module_version": "0.1.0", "from": 0, "to": 1},
        {"module_version": "0.2.0", "from": 2, "to": 2},
    ]
    assert late["state"]["deposits"] == [[2, "(none)", "EUR"], [3, "", "CHF"]]
    asked = thalo(*state[:-1], "--module", "0.1.0", store=cli_store, cwd=work).stdout
    assert asked.startswith("BankAccount a1 (version 2, module 0.1.0: as asked with --module)")
    missing = thalo(*state, "--module", "7.0.0", store=cli_store, cwd=work, check_code=2)
    assert json.loads(missing.stdout)["error"]["code"] == "ModuleNotFound"
