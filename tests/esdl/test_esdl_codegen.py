"""Code generation: golden files, generated Python that passes ruff and mypy --strict and
works with the guest SDK, and TypeScript declarations.

Regenerate the golden files after an intended change with
``THALO_UPDATE_GOLDEN=1 pytest tests/esdl/test_esdl_codegen.py``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from thalo.errors import SchemaError
from thalo.esdl import Schema, generate_python, generate_typescript, parse, parse_file

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SCHEMAS = HERE / "schemas"
GOLDEN = HERE / "golden"
NAMES = sorted(p.stem for p in SCHEMAS.glob("*.esdl"))
UPDATE = os.environ.get("THALO_UPDATE_GOLDEN") == "1"


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found is not None, f"{name} is not installed"
    return found


def _run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("suffix", "generate"), [(".py", generate_python), (".ts", generate_typescript)]
)
def test_golden(name: str, suffix: str, generate: Any) -> None:
    schema = parse_file(SCHEMAS / f"{name}.esdl")
    code = generate(schema, source_name=f"{name}.esdl")
    assert code == generate(schema, source_name=f"{name}.esdl"), "generation is deterministic"
    golden = GOLDEN / f"{name}{suffix}"
    if UPDATE:
        golden.write_text(code, "utf-8")
    assert code == golden.read_text("utf-8"), f"{golden} is stale (THALO_UPDATE_GOLDEN=1)"


def test_generated_python_passes_ruff_check_and_format() -> None:
    files = [str(GOLDEN / f"{name}.py") for name in NAMES]
    check = _run(_tool("ruff"), "check", "--no-cache", *files)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run(_tool("ruff"), "format", "--check", "--no-cache", *files)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


COUNTER_IMPL = '''\
"""A counter implemented on the generated base class."""

from __future__ import annotations

from counter import CounterBase, Decremented, Incremented
from thalo.sdk import Context, Rejected


class Counter(CounterBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.count = 0

    def handle_increment(self, ctx: Context, amount: int) -> Incremented:
        return Incremented(amount=amount, count=self.count + amount)

    def handle_decrement(self, ctx: Context, amount: int) -> Decremented:
        if amount > self.count:
            raise Rejected("count cannot go below zero")
        return Decremented(amount=amount, count=self.count - amount)

    def apply_incremented(self, event: Incremented) -> None:
        self.count = event.count

    def apply_decremented(self, event: Decremented) -> None:
        self.count = event.count
'''


def _mypy(directory: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return _run(
        _tool("mypy"),
        "--strict",
        "--follow-imports=silent",
        "--no-incremental",
        "--config-file",
        os.devnull,
        *files,
        cwd=directory,
    )


def test_generated_python_passes_mypy_strict_with_an_implementation(tmp_path: Path) -> None:
    for name in NAMES:
        shutil.copy(GOLDEN / f"{name}.py", tmp_path / f"{name}.py")
    (tmp_path / "counter_impl.py").write_text(COUNTER_IMPL, "utf-8")
    result = _mypy(tmp_path, *(f"{n}.py" for n in NAMES), "counter_impl.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_catches_a_handler_that_breaks_the_generated_signature(tmp_path: Path) -> None:
    shutil.copy(GOLDEN / "counter.py", tmp_path / "counter.py")
    wrong = COUNTER_IMPL.replace(
        "def handle_increment(self, ctx: Context, amount: int) -> Incremented:",
        "def handle_increment(self, ctx: Context, amount: str) -> Incremented:",
    ).replace("amount=amount, count=self.count + amount", "amount=1, count=1")
    (tmp_path / "counter_impl.py").write_text(wrong, "utf-8")
    result = _mypy(tmp_path, "counter.py", "counter_impl.py")
    assert result.returncode == 1
    assert 'Argument 2 of "handle_increment" is incompatible with supertype' in result.stdout


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"golden_{name}", GOLDEN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module


def test_generated_module_round_trips_values_that_the_schema_accepts() -> None:
    pytest.importorskip("thalo.sdk._aggregate")
    schema = parse_file(SCHEMAS / "everything.esdl")
    module = _load("everything")
    assert parse(module.SCHEMA) == schema
    base = module.EverythingBase
    assert base.__thalo_aggregate__ == "Everything"
    assert base.__thalo_version__ == "2.1.0-rc.1+build.5"
    assert base.__thalo_schema__ == schema.to_esdl()
    assert base.__abstractmethods__ == {
        "handle_create",
        "handle_tag",
        "handle_touch",
        "apply_created",
        "apply_tagged",
        "apply_noted",
        "apply_touched",
    }
    assert set(base.__thalo_events__) == set(schema.events)

    note = module.Note(text="n", attachments=[b"\x00\xff"])
    owner = module.Owner(id="o", history=[note])
    tagged = module.Tagged(tags=["a"], owner=owner, scores=[[1, None]])
    data = tagged.to_json()
    assert data == {
        "tags": ["a"],
        "owner": {
            "id": "o",
            "avatar": None,
            "history": [{"text": "n", "attachments": [base64.b64encode(b"\x00\xff").decode()]}],
        },
        "scores": [[1, None]],
    }
    schema.validate_event("Tagged", data)
    assert module.Tagged.from_json(data) == tagged
    assert module.Tagged.__thalo_event__ == "Tagged"
    # A missing optional field reads as None; to_json writes it back as null.
    assert module.Tagged.from_json({"tags": []}) == module.Tagged(tags=[])
    assert module.Noted(notes=[None]).to_json() == {"notes": [None]}
    created = module.Created(
        name="x", size=1, total=2, ratio=0.5, precise=0.25, enabled=False, blob=b"hi"
    )
    schema.validate_event("Created", created.to_json())
    assert module.Created.from_json(created.to_json()) == created


def test_generated_command_specs_decode_payloads() -> None:
    pytest.importorskip("thalo.sdk._aggregate")
    module = _load("everything")
    commands = module.EverythingBase.__thalo_commands__
    assert list(commands) == ["create", "tag", "touch"]
    tag = commands["tag"]
    assert (tag.name, tag.events) == ("tag", ("Tagged", "Noted"))
    kwargs = tag.decode({"tags": ["a"], "owner": {"id": "o", "history": []}})
    assert kwargs == {"tags": ["a"], "owner": module.Owner(id="o", history=[]), "scores": None}
    create = commands["create"].decode(
        {
            "name": "n",
            "size": 1,
            "total": 2,
            "ratio": 1.0,
            "precise": 2.0,
            "enabled": True,
            "blob": "aGk=",
        }
    )
    assert create["blob"] == b"hi"
    assert commands["touch"].decode({}) == {}
    assert commands["touch"].events == ("Touched",)


def test_python_codegen_without_bytes_imports_no_codec() -> None:
    code = (GOLDEN / "counter.py").read_text("utf-8")
    assert "from thalo.sdk import Aggregate, CommandSpec, Context\n" in code
    assert "bytes" not in code


def test_long_signatures_wrap_like_ruff_format() -> None:
    params = ", ".join(f"parameter_number_{i}: String" for i in range(6))
    schema = parse(f'version = "0.1.0"\naggregate A {{ go({params}) -> E }}\nevent E {{}}\n')
    code = generate_python(schema)
    assert "    def handle_go(\n        self,\n        ctx: Context,\n" in code
    assert all(len(line) <= 100 for line in code.splitlines())


def test_typescript_payload_name_clash_is_a_schema_error() -> None:
    schema = parse(
        'version = "0.1.0"\naggregate A { go(a: GoCommand) -> E }\nevent E {}\ntype GoCommand {}\n'
    )
    with pytest.raises(SchemaError, match="GoCommand"):
        generate_typescript(schema)
    schema = parse('version = "0.1.0"\naggregate A { go() -> AEvent }\nevent AEvent {}\n')
    with pytest.raises(SchemaError, match="AEvent would name both"):
        generate_typescript(schema)


def _tsc() -> str | None:
    return shutil.which("tsc") or next(
        (str(p) for p in [ROOT / "node_modules" / ".bin" / "tsc"] if p.exists()), None
    )


@pytest.mark.skipif(_tsc() is None, reason="TypeScript compiler (tsc) is not installed")
def test_generated_typescript_compiles(tmp_path: Path) -> None:
    files = []
    for name in NAMES:
        shutil.copy(GOLDEN / f"{name}.ts", tmp_path / f"{name}.ts")
        files.append(f"{name}.ts")
    (tmp_path / "impl.ts").write_text(
        'import { Context, Rejected } from "@thalo/sdk";\n'
        "import { CounterBase, Decremented, Incremented, type DecrementCommand,\n"
        '  type IncrementCommand } from "./counter";\n'
        "export class Counter extends CounterBase {\n"
        "  count = 0;\n"
        "  handleIncrement(ctx: Context, command: IncrementCommand) {\n"
        '    if (command.amount <= 0) throw new Rejected("positive amounts only");\n'
        "    return Incremented({ amount: command.amount, count: this.count + command.amount });\n"
        "  }\n"
        "  handleDecrement(ctx: Context, command: DecrementCommand) {\n"
        "    return Decremented({ amount: command.amount, count: this.count - command.amount });\n"
        "  }\n"
        "  applyIncremented(event: Incremented): void { this.count = event.count; }\n"
        "  applyDecremented(event: Decremented): void { this.count = event.count; }\n"
        "}\n",
        "utf-8",
    )
    sdk = ROOT / "sdk" / "typescript" / "src" / "index.d.ts"
    (tmp_path / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "es2022",
                    "module": "esnext",
                    "moduleResolution": "bundler",
                    "types": [],
                    "paths": {"@thalo/sdk": [str(sdk)]},
                },
                "files": [*files, "impl.ts"],
            }
        ),
        "utf-8",
    )
    tsc = _tsc()
    assert tsc is not None
    result = _run(tsc, "-p", "tsconfig.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_is_embedded_verbatim_in_typescript() -> None:
    schema: Schema = parse_file(SCHEMAS / "todos.esdl")
    code = generate_typescript(schema)
    start = code.index("export const SCHEMA = `") + len("export const SCHEMA = `")
    assert code[start : code.index("`;", start)] == schema.to_esdl()
