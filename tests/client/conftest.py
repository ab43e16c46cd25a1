"""Fixtures for the client tests: a real ``thalo serve`` over a store with the test modules.

The built components and the published template store (``built``,
``counter_v2``, ``published_sqlite``) come from tests/components.py, which the
root conftest registers for every area.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import Served, serving

from thalo.client import Client


def _copy(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite:///{target.as_posix()}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, published_sqlite: Path) -> Iterator[Served]:
    """One `thalo serve` per test module, on its own copy of the published store.

    Tests share it, so each uses entity ids of its own (``helpers.unique``).
    """
    url = _copy(published_sqlite, tmp_path_factory.mktemp("served") / "store.db")
    with serving(url, capture=True) as served:
        yield served


@pytest.fixture
def client(server: Served) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


@pytest.fixture
def private_store(tmp_path: Path, published_sqlite: Path) -> str:
    """A store of this test's own (for tests that start their own servers)."""
    return _copy(published_sqlite, tmp_path / "store.db")
