"""Fixtures for the server tests: the real `thalo serve` over stores with the test modules.

``api_store`` is a store on each backend (an SQLite copy of the published
template, or the session's published Message DB database, where tests use
unique ids); ``api`` is one server per test module and backend, shared by the
tests that only need an ordinary server. Tests that need special options
start their own with ``serving``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving import Served, serving

pytestmark = pytest.mark.wasm


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)]
)
def api_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "messagedb":
        url: str = request.getfixturevalue("published_postgres")
        return url
    template: Path = request.getfixturevalue("published_sqlite")
    target = tmp_path_factory.mktemp("api") / "store.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target.as_posix()}"


@pytest.fixture(scope="module")
def api(api_store: str) -> Iterator[Served]:
    """A server on ``api_store`` with an admin token and the command runner."""
    with serving(api_store, capture=True) as served:
        yield served


@pytest.fixture
def http(api: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client
