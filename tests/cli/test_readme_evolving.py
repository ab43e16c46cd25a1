"""The README's "Evolving an aggregate" section works as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers import ROOT, readme_blocks, run_readme_script

pytestmark = pytest.mark.wasm


def test_the_readme_evolving_section_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "examples",
        tmp_path / "examples",
        ignore=shutil.ignore_patterns("dist", "__pycache__"),
    )
    [bash] = readme_blocks("Evolving an aggregate")
    done = run_readme_script(bash, tmp_path, flags="-euxo", COLUMNS="250")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    esdl = (tmp_path / "bank_v2" / "bank_account.esdl").read_text()
    assert 'event DepositedFunds version 2 {\n  channel: String? = "branch"\n' in esdl
    assert "  event DepositedFunds: schema version 1 -> 2" in out  # thalo esdl diff
    assert '  DepositedFunds.channel: added, optional (String? = "branch")' in out
    assert "published BankAccount 0.2.0" in out
    # thalo stream --json: the old deposit at schema version 1, the new one at 2
    versions = re.findall(r'"type": "(\w+)",.*?"schemaVersion": "(\d)"', out, re.S)
    assert versions[-2:] == [("DepositedFunds", "1"), ("DepositedFunds", "2")], versions
    past, now = out.split("BankAccount acc-1 (version")[1:]
    assert past.startswith(" 1, module 0.1.0: the version that wrote the last event replayed)")
    assert "events written by 0.1.0 at 0–1" in past
    assert '"balance": 15' in past
    assert now.startswith(" 2, module 0.2.0)") and '"balance": 16' in now
