"""Each package's ``__all__`` is its public surface: complete, and every name importable."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "thalo.errors",
    "thalo.core",
    "thalo.store",
    "thalo.esdl",
    "thalo.wasm",
    "thalo.registry",
    "thalo.runtime",
    "thalo.consumer",
    "thalo.server",
    "thalo.client",
    "thalo.sdk",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for item in exported:
        assert getattr(module, item, None) is not None, f"{name}.{item} is in __all__ but missing"
    public = {
        key
        for key, value in vars(module).items()
        if not key.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", name).startswith(name)
        and key not in ("annotations", "TYPE_CHECKING")
    }
    assert public <= exported, (
        f"{name} defines public names missing from __all__: {public - exported}"
    )
