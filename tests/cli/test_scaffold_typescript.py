"""`thalo new NAME --lang typescript`: the scaffold tests under Node, publishes and executes
right away, through the real `thalo` entry point, `npm install` and `npm test`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

THALO = str(Path(sys.executable).with_name("thalo"))
NPM = shutil.which("npm")

pytestmark = [
    pytest.mark.wasm,
    pytest.mark.skipif(NPM is None, reason="npm is not installed"),
]


def run(*argv: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def test_new_typescript_project_tests_publishes_and_executes(tmp_path: Path) -> None:
    assert NPM is not None
    env = {**os.environ, "THALO_STORE": f"sqlite:///{tmp_path / 'store.db'}", "COLUMNS": "200"}
    created = run(THALO, "new", "widget", "--lang", "typescript", cwd=tmp_path, env=env)
    project = tmp_path / "widget"
    assert "npm install && npm test" in created.stdout
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()) == [
        ".gitignore",
        "package.json",
        "src/widget.ts",
        "src/widget_schema.ts",
        "test/widget.test.ts",
        "tsconfig.json",
        "widget.esdl",
    ]
    package = json.loads((project / "package.json").read_text("utf-8"))
    assert package["thalo"]["aggregate"] == "src/widget.ts:Widget"
    run(NPM, "install", "--no-audit", "--no-fund", cwd=project, env=env)
    tests = run(NPM, "test", cwd=project, env=env)
    assert "# pass 5" in tests.stdout and "# fail 0" in tests.stdout
    published = run(THALO, "publish", ".", cwd=project, env=env)
    assert "Widget" in published.stdout + published.stderr
    again = run(THALO, "publish", ".", cwd=project, env=env)  # the same source: a no-op
    assert "already published from this source" in " ".join(again.stdout.split())
    done = run(
        THALO,
        "execute",
        "Widget",
        "w-1",
        "increment",
        '{"amount": 3}',
        "--json",
        cwd=project,
        env=env,
    )
    events = json.loads(done.stdout)
    assert [(e["type"], e["data"]) for e in events] == [
        ("Incremented", {"amount": 3, "total": 3, "sequence": None})
    ]
    twice = run(
        THALO, "execute", "Widget", "w-1", "increment", '{"amount": 3}', cwd=project, env=env
    )
    assert "total" in twice.stdout and "6" in twice.stdout


def test_new_typescript_refuses_reserved_words(tmp_path: Path) -> None:
    proc = subprocess.run(
        [THALO, "new", "class", "--lang", "typescript"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "reserved in TypeScript" in proc.stderr
    assert not (tmp_path / "class").exists()
