"""Fixtures for the client tests: the runtime tests' built components, and a real server.

The ``built`` and ``published_sqlite`` fixtures are the runtime tests' own,
loaded from tests/runtime/conftest.py under a name of their own (a
non-root conftest may not use ``pytest_plugins``). Builds are cached by content
hash, so reusing them here costs little.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from client_support import drain, store_copy
from serving import Served, serving

from thalo.client import Client


def _load_runtime_conftest() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "runtime" / "conftest.py"
    spec = importlib.util.spec_from_file_location("thalo_tests_runtime_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_runtime = _load_runtime_conftest()
built = _runtime.built
counter_v2 = _runtime.counter_v2
published_sqlite = _runtime.published_sqlite


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, published_sqlite: Path) -> Iterator[Served]:
    """One `thalo serve` per test module, on its own copy of the published store.

    Tests share it, so each uses entity ids of its own (``helpers.unique``).
    """
    url = store_copy(published_sqlite, tmp_path_factory.mktemp("served") / "store.db")
    with serving(url) as served:
        drain(served)
        yield served


@pytest.fixture
def client(server: Served) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


@pytest.fixture
def private_store(tmp_path: Path, published_sqlite: Path) -> str:
    """A store of this test's own (for tests that start their own servers)."""
    return store_copy(published_sqlite, tmp_path / "store.db")


__all__ = ["built", "counter_v2", "published_sqlite"]
