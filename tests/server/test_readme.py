"""The README's "Run it as a service" section works as written (on a free port)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers import readme_blocks, run_readme_script
from serving import free_port

pytestmark = pytest.mark.wasm


def test_the_readme_service_section_runs_as_written(published_sqlite: Path, tmp_path: Path) -> None:
    [bash] = readme_blocks("Run it as a service")
    [python] = readme_blocks("Run it as a service", "python")
    port = str(free_port())
    bash, python = bash.replace("4433", port), python.replace("4433", port)
    # the state the README's first command leaves: Counter published in ./.thalo/thalo.db
    (tmp_path / ".thalo").mkdir()
    shutil.copyfile(published_sqlite, tmp_path / ".thalo" / "thalo.db")
    (tmp_path / "client.py").write_text(python)
    script = bash.replace("thalo serve &", f"thalo serve --port {port} &", 1)
    script += f"\n{sys.executable} client.py\nkill %1\nwait\n"
    done = run_readme_script(script, tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert '"status":"ready"' in out
    assert '"type":"Incremented"' in out and '"amount":5' in out
    assert '"state":{"count":5' in out  # the curl GET after the first increment
    assert '"type": "Decremented"' in out  # thalo execute --url … --json
    assert "2 [{'amount': 1, 'count': 4" in out  # the Python client: version 2, count 5 - 2 + 1
    assert "{'count': 4" in out
