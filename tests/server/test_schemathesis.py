"""schemathesis fuzzes the live server from its own /openapi.json: no 5xx, no undocumented reply."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from components import publish_all
from serving import serving

pytestmark = [pytest.mark.wasm, pytest.mark.slow]
ST = str(Path(sys.executable).with_name("st"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


def test_schemathesis_finds_no_server_error_and_no_broken_response(
    built: dict[str, Any], tmp_path: Path
) -> None:
    # the real examples only: the test guests trap and lie on purpose (500 by design)
    examples = {name: built[name] for name in ("Counter", "BankAccount", "Todos")}
    url = f"sqlite:///{(tmp_path / 'fuzz.db').as_posix()}"
    asyncio.run(publish_all(url, examples))
    with serving(url, capture=True) as served:
        run = subprocess.run(
            [
                ST,
                "run",
                f"{served.url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "40",
                "--request-timeout",
                "20",
                "--seed",
                "20261201",
                "--header",
                f"Authorization: Bearer {served.admin_token}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # st keeps a .schemathesis/ folder in its working directory
        )
        tested = run.stdout
    assert run.returncode == 0, tested[-6000:] + run.stderr[-2000:]
    # 7 commands and 3 entity reads of the examples, and the 14 fixed routes
    assert "Selected: 25/25" in tested and "Tested: 25" in tested, tested[-3000:]
    assert " passed" in tested and "failed" not in tested.split("SUMMARY")[-1]
