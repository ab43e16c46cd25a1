"""``thalo build`` and ``thalo new`` through the real CLI entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from thalo.cli.main import main
from thalo.wasm import load_module

pytestmark = pytest.mark.wasm

GUESTS = Path(__file__).resolve().parent / "guests"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "counter"
    shutil.copytree(GUESTS / "tally", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_build_writes_name_version_wasm_deterministically(
    project: Path, capsys: pytest.CaptureFixture[str], guests: dict[str, object]
) -> None:
    code, out, err = run(capsys, "build", str(project), "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["path"] == str(project / "dist" / "Counter-0.1.0.wasm")
    first = Path(result["path"]).read_bytes()
    assert first == guests["tally"].wasm  # type: ignore[attr-defined]
    target = project / "again.wasm"
    code, out, _ = run(capsys, "build", str(project), "-o", str(target))
    assert code == 0 and "built Counter 0.1.0" in out and "from the build cache" in out
    assert target.read_bytes() == first


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: (p / "thalo.toml").unlink(), "has no thalo config"),
        (lambda p: (p / "thalo.toml").write_text('aggregate = "tally"\n'), "must be"),
        (
            lambda p: (p / "thalo.toml").write_text(
                'aggregate = "tally:Nope"\nschema = "tally.esdl"\n'
            ),
            "module 'tally' has no class 'Nope' (it defines Counter)",
        ),
        (
            lambda p: (p / "thalo.toml").write_text(
                'aggregate = "gone:Counter"\nschema = "tally.esdl"\n'
            ),
            "aggregate module 'gone' not found",
        ),
        (
            lambda p: (p / "thalo.toml").write_text(
                'aggregate = "tally:Counter"\nschema = "x.esdl"\n'
            ),
            "schema file x.esdl does not exist",
        ),
        (lambda p: (p / "thalo.toml").write_text("aggregate = [\n"), "thalo.toml"),
        (
            lambda p: (p / "thalo.toml").write_text(
                'aggregate = "aggregate:X"\nschema = "tally.esdl"\n'
            ),
            "module name 'aggregate' is taken by the glue",
        ),
        (
            lambda p: (p / "helper.py").write_text("import socket\n"),
            "helper.py:1: imports socket, but guests get no network",
        ),
        (
            lambda p: (p / "helper.py").write_text("from subprocess import run\n"),
            "imports subprocess, but guests cannot start processes",
        ),
        (
            lambda p: (p / "helper.py").write_text("import requests\n"),
            "imports requests, which is neither the standard library nor a module of this project",
        ),
        (
            lambda p: (p / "helper.py").write_text("from thalo.wasm import load_module\n"),
            "a guest may import only thalo.sdk",
        ),
        (lambda p: (p / "tally.py").write_text("def broken(:\n"), "tally.py:1"),
    ],
)
def test_build_errors_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], edit: object, message: str
) -> None:
    edit(project)  # type: ignore[operator]
    code, _, err = run(capsys, "build", str(project))
    assert code == 2
    assert "BuildError" in err
    assert message in " ".join(err.split())
    assert not (project / "dist").exists()


@pytest.mark.slow  # componentize-py runs (and fails) every time: ~12 s
def test_an_incomplete_class_fails_the_build(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (project / "tally.py").read_text()
    (project / "tally.py").write_text(source.replace("def apply_reset", "def on_reset"))
    code, _, err = run(capsys, "build", str(project))
    assert code == 2
    assert "componentize-py failed: TypeError: Counter does not implement apply_reset" in (
        " ".join(err.split())
    )


def test_schema_error_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "tally.esdl").write_text("aggregate Counter { increment( -> }\n")
    code, _, err = run(capsys, "build", str(project))
    assert code == 2 and "SchemaError" in err


def test_pyproject_config_is_read(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "thalo.toml").unlink()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "c"\n\n[tool.thalo]\naggregate = "tally:Nope"\nschema = "tally.esdl"\n'
    )
    code, _, err = run(capsys, "build", str(project))
    assert code == 2 and "has no class 'Nope'" in " ".join(err.split())


def test_a_new_project_ignores_the_store_and_build_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked with git itself: what publish, build and pytest leave behind is ignored."""
    target = tmp_path / "ledger"
    code, _, err = run(capsys, "new", "ledger", "-d", str(target))
    assert code == 0, err
    subprocess.run(["git", "init", "-q", str(target)], check=True)
    left_behind = [
        ".thalo/thalo.db",
        ".thalo/thalo.db-wal",
        "dist/Ledger-0.1.0.wasm",
        "elsewhere.wasm",
        "__pycache__/ledger.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        ".venv/pyvenv.cfg",
    ]
    for name in left_behind:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(b"x")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=target,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(line[3:] for line in status.splitlines()) == [
        ".gitignore",
        "ledger.esdl",
        "ledger.py",
        "ledger_schema.py",
        "pyproject.toml",
        "test_ledger.py",
    ]


@pytest.mark.slow  # the first run builds the scaffold with componentize-py
def test_new_scaffolds_a_project_that_tests_and_builds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ledger"
    code, out, err = run(capsys, "new", "ledger-entry", "-d", str(target))
    assert (code, err) == (0, "")
    assert sorted(p.name for p in target.iterdir()) == [
        ".gitignore",
        "ledger_entry.esdl",
        "ledger_entry.py",
        "ledger_entry_schema.py",
        "pyproject.toml",
        "test_ledger_entry.py",
    ]
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout
    code, out, err = run(capsys, "build", str(target), "--json")
    assert code == 0, err
    module = load_module(Path(json.loads(out)["path"]).read_bytes())
    assert module.name == "LedgerEntry"
    entity = module.entity("l-1")
    assert entity.handle(
        {"streamName": "ledgerEntry-l-1", "position": 3}, "increment", {"amount": 5}
    ) == [("Incremented", {"amount": 5, "total": 5, "sequence": 3})]
    code, _, err = run(capsys, "new", "ledger-entry", "-d", str(target))
    assert code == 2 and "already exists and is not empty" in " ".join(err.split())
    code, _, err = run(capsys, "new", "9lives", "-d", str(tmp_path / "x"))
    assert code == 2 and "not a usable aggregate name" in " ".join(err.split())
