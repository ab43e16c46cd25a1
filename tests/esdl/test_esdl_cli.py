"""``thalo esdl check|fmt`` and ``thalo codegen`` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thalo.esdl import parse_file

SCHEMAS = Path(__file__).parent / "schemas"
GOLDEN = Path(__file__).parent / "golden"


def thalo(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thalo.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_check_ok_prints_a_summary() -> None:
    result = thalo("esdl", "check", str(SCHEMAS / "bank_account.esdl"))
    assert result.returncode == 0, result.stderr
    assert "ok — aggregate BankAccount 0.1.0: 5 commands, 6 events, 1 types" in result.stdout


def test_check_json_prints_the_model() -> None:
    result = thalo("esdl", "check", "--json", str(SCHEMAS / "counter.esdl"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == parse_file(SCHEMAS / "counter.esdl").to_json()
    assert data["warnings"] == []


def test_check_reports_every_error_with_carets_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.esdl"
    bad.write_text('version = "0.1"\naggregate A {\n  go(a: Integer) -> Missing\n}\n', "utf-8")
    result = thalo("esdl", "check", str(bad))
    assert result.returncode == 2
    assert f"{bad}:1:11: error: invalid version '0.1'" in result.stderr
    assert (
        f"{bad}:3:9: error: unknown type 'Integer' (scalars are String, Int, Long, Float, "
        "Double, Bool, Bytes)\n 3 |   go(a: Integer) -> Missing\n   |         ^^^^^^^\n"
    ) in result.stderr
    assert f"{bad}:3:21: error: event 'Missing' is not declared" in result.stderr
    assert f"{bad}: 3 errors" in result.stderr


def test_check_json_reports_errors_as_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.esdl"
    bad.write_text('version = "0.1.0"\naggregate A { go() -> Nope }\n', "utf-8")
    result = thalo("esdl", "check", "--json", str(bad))
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "errors": [
            {
                "severity": "error",
                "message": "event 'Nope' is not declared (add 'event Nope { ... }')",
                "file": str(bad),
                "line": 2,
                "column": 23,
            }
        ]
    }
    missing = thalo("esdl", "check", "--json", str(tmp_path / "missing.esdl"))
    assert missing.returncode == 2
    assert "cannot read ESDL file" in json.loads(missing.stdout)["errors"][0]["message"]


def test_check_prints_warnings_but_succeeds(tmp_path: Path) -> None:
    file = tmp_path / "w.esdl"
    file.write_text('version = "0.1.0"\naggregate A {}\nevent Lost {}\n', "utf-8")
    result = thalo("esdl", "check", str(file))
    assert result.returncode == 0
    assert "3:7: warning: event 'Lost' is declared but no command produces it" in result.stderr
    assert "1 warning" in result.stdout


def test_check_missing_file_exits_2(tmp_path: Path) -> None:
    result = thalo("esdl", "check", str(tmp_path / "nope.esdl"))
    assert result.returncode == 2
    assert "cannot read ESDL file" in result.stderr


UGLY = """// Counter, badly laid out.
version="0.1.0"
aggregate Counter{increment(amount:Int)->Incremented // up
  decrement( amount : Int )
    -> Decremented
}
event Incremented{amount:Int,count:Long}
event Decremented{amount:Int count:Long}
"""


def test_fmt_prints_check_and_write(tmp_path: Path) -> None:
    file = tmp_path / "c.esdl"
    file.write_text(UGLY, "utf-8")
    printed = thalo("esdl", "fmt", str(file))
    assert printed.returncode == 0
    assert printed.stdout == (
        "// Counter, badly laid out.\n"
        'version = "0.1.0"\n'
        "\n"
        "aggregate Counter {\n"
        "  increment(amount: Int) -> Incremented  // up\n"
        "  decrement(amount: Int) -> Decremented\n"
        "}\n"
        "\n"
        "event Incremented {\n"
        "  amount: Int\n"
        "  count: Long\n"
        "}\n"
        "\n"
        "event Decremented {\n"
        "  amount: Int\n"
        "  count: Long\n"
        "}\n"
    )
    assert file.read_text("utf-8") == UGLY, "printing does not touch the file"
    check = thalo("esdl", "fmt", "--check", str(file))
    assert check.returncode == 1
    assert "would reformat" in check.stderr
    file.chmod(0o640)
    write = thalo("esdl", "fmt", "--write", str(file))
    assert write.returncode == 0
    assert file.read_text("utf-8") == printed.stdout
    assert file.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["c.esdl"], "no temporary file is left"
    assert thalo("esdl", "fmt", "--check", str(file)).returncode == 0


def test_fmt_refuses_a_file_with_syntax_errors_and_leaves_it_alone(tmp_path: Path) -> None:
    file = tmp_path / "broken.esdl"
    file.write_text('version = "0.1.0"\naggregate A { go( -> E }\n', "utf-8")
    result = thalo("esdl", "fmt", "--write", str(file))
    assert result.returncode == 2
    assert f"{file}:2:19: error: unexpected '->'" in result.stderr
    assert file.read_text("utf-8") == 'version = "0.1.0"\naggregate A { go( -> E }\n'


@pytest.mark.parametrize(("lang", "suffix"), [("python", ".py"), ("typescript", ".ts")])
def test_codegen_writes_the_golden_module(tmp_path: Path, lang: str, suffix: str) -> None:
    out = tmp_path / "gen" / f"counter{suffix}"
    result = thalo("codegen", str(SCHEMAS / "counter.esdl"), "--lang", lang, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text("utf-8") == (GOLDEN / f"counter{suffix}").read_text("utf-8")
    to_stdout = thalo("codegen", str(SCHEMAS / "counter.esdl"), "--lang", lang)
    assert to_stdout.stdout == out.read_text("utf-8")


def test_codegen_defaults_to_python() -> None:
    result = thalo("codegen", str(SCHEMAS / "counter.esdl"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / "counter.py").read_text("utf-8")


def test_codegen_bad_schema_and_bad_language(tmp_path: Path) -> None:
    bad = tmp_path / "bad.esdl"
    bad.write_text("aggregate A {}\n", "utf-8")
    result = thalo("codegen", str(bad), "--lang", "python")
    assert result.returncode == 2
    assert "missing version" in result.stderr
    result = thalo("codegen", str(SCHEMAS / "counter.esdl"), "--lang", "cobol")
    assert result.returncode == 2
