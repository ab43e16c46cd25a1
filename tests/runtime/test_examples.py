"""The examples stay true: their generated modules match the codegen, and they run in wasm."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import EXAMPLES, LIAR, unique

from thalo.esdl import generate_python, parse_file
from thalo.runtime import Runtime

PROJECTS = [*sorted(p for p in EXAMPLES.iterdir() if (p / "pyproject.toml").is_file()), LIAR]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_generated_module_is_current(project: Path) -> None:
    schema_path = next(project.glob("*.esdl"))
    generated = project / f"{schema_path.stem}_schema.py"
    expected = generate_python(parse_file(schema_path), source_name=schema_path.name)
    assert generated.read_text("utf-8") == expected, (
        f"{generated} is stale: run `thalo codegen {schema_path} --lang python -o {generated}`"
    )


@pytest.mark.wasm
async def test_todos_in_wasm(runtime: Runtime) -> None:
    t = unique("list")
    await runtime.execute("Todos", t, "add_todo", {"id": "1", "description": "write docs"})
    await runtime.execute("Todos", t, "add_todo", {"id": "2", "description": "ship"})
    await runtime.execute("Todos", t, "complete_todo", {"id": "1"})
    await runtime.execute("Todos", t, "remove_todo", {"id": "2"})
    state = await runtime.state("Todos", t)
    assert state.state["items"] == {"1": {"description": "write docs", "completed": True}}
