"""The README's "Aggregates in TypeScript" commands work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import ROOT, readme_blocks, run_readme_script

pytestmark = pytest.mark.wasm


def test_the_readme_typescript_counter_runs_as_written(tmp_path: Path) -> None:
    [bash] = readme_blocks("Aggregates in TypeScript")
    assert len(bash.strip().splitlines()) == 3
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # run from a checkout's root
    done = run_readme_script(bash, tmp_path)  # the default store: ./.thalo/thalo.db
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Counter" in done.stdout and "0.1.0" in done.stdout
    assert "Incremented" in done.stdout
    assert re.search(r"count\W+2", done.stdout), done.stdout
    assert (tmp_path / ".thalo" / "thalo.db").is_file()
