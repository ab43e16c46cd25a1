"""The test guests' generated modules are what thalo codegen makes of their ESDL today."""

from __future__ import annotations

from pathlib import Path

import pytest

from thalo.esdl import generate_python, parse

GUESTS = Path(__file__).resolve().parents[1] / "wasm" / "guests"


@pytest.mark.parametrize("name", ["tally", "chaos"])
def test_generated_module_is_fresh(name: str) -> None:
    schema = parse((GUESTS / name / f"{name}.esdl").read_text(), f"{name}.esdl")
    committed = (GUESTS / name / f"{name}_schema.py").read_text()
    assert committed == generate_python(schema), (
        f"regenerate: thalo codegen tests/wasm/guests/{name}/{name}.esdl "
        f"-o tests/wasm/guests/{name}/{name}_schema.py"
    )


def test_sdk_all_is_complete() -> None:
    import thalo.sdk

    public = {n for n in vars(thalo.sdk) if not n.startswith("_")} - {"annotations"}
    assert set(thalo.sdk.__all__) == public - {"testing"}
