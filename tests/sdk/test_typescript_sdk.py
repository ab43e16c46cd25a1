"""The TypeScript SDK under Node: the examples' own `npm test` (given/when/then with
schema validation), and the SDK's validator agreeing with the runtime's, message for message."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from thalo.errors import PayloadInvalid
from thalo.esdl import Schema, parse_file

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "typescript"
NODE = shutil.which("node")
TS_EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*-ts") if (p / "package.json").is_file())

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


@pytest.mark.parametrize("example", TS_EXAMPLES, ids=lambda p: p.name)
def test_example_unit_tests_pass_under_node(example: Path) -> None:
    npm = shutil.which("npm")
    assert npm is not None
    result = subprocess.run(
        [npm, "test"], cwd=example, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout


def _spec(schema: Schema) -> dict[str, Any]:
    """The SPEC the TypeScript generator writes, built here from the same schema."""

    def fields(items: Any) -> list[list[str]]:
        return [[f.name, str(f.type)] for f in items]

    return {
        "aggregate": schema.name,
        "version": schema.version,
        "schema": schema.to_esdl(),
        "types": {n: fields(d.fields) for n, d in schema.types.items()},
        "events": {n: fields(d.fields) for n, d in schema.events.items()},
        "commands": {
            n: {"params": fields(c.params), "events": [r.name for r in c.events]}
            for n, c in schema.commands.items()
        },
    }


def test_the_sdk_validator_reports_what_the_runtime_reports() -> None:
    schema = parse_file(ROOT / "tests" / "esdl" / "schemas" / "everything.esdl")
    command = next(iter(schema.commands))
    params = schema.commands[command].params
    good: dict[str, Any] = {}
    samples = {"Int": 1, "Long": 2, "Float": 1.5, "Double": 2.5, "Bool": True, "String": "s"}
    for f in params:
        if f.type.name in samples and f.type.item is None:
            good[f.name] = samples[f.type.name]
    cases: list[Any] = [good, {}, {"nope": 1}, {**good, "extra": None}, []]
    for f in params:
        for bad in ("text", 2**40, 1.5, None, [1], {"a": 1}, True):
            cases.append({**good, f.name: bad})
    expected = []
    for payload in cases:
        try:
            schema.validate_command(command, payload)
            expected.append([])
        except PayloadInvalid as exc:
            expected.append([{"path": v.path, "message": v.message} for v in exc.violations])
    script = (
        f'import {{ commandViolations }} from "{(SDK / "src" / "schema.js").as_uri()}";\n'
        'import { readFileSync } from "node:fs";\n'
        'const { spec, command, cases } = JSON.parse(readFileSync(0, "utf8"));\n'
        "console.log(JSON.stringify(cases.map((c) => commandViolations(spec, command, c))));\n"
    )
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        input=json.dumps({"spec": _spec(schema), "command": command, "cases": cases}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
