"""The README's "Aggregates in TypeScript" commands work as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.wasm
ROOT = Path(__file__).resolve().parents[2]


def typescript_commands() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Aggregates in TypeScript", 1)[1].split("\n## ", 1)[0]
    [bash] = re.findall(r"```bash\n(.*?)```", section, re.S)
    return bash


def test_the_readme_typescript_counter_runs_as_written(tmp_path: Path) -> None:
    bash = typescript_commands()
    assert len(bash.strip().splitlines()) == 3
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # run from a checkout's root
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("THALO_STORE", None)  # the default store: ./.thalo/thalo.db
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", bash],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Counter" in done.stdout and "0.1.0" in done.stdout
    assert "Incremented" in done.stdout
    assert re.search(r"count\W+2", done.stdout), done.stdout
    assert (tmp_path / ".thalo" / "thalo.db").is_file()
