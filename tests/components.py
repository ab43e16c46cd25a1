"""Built example components and stores with them published: fixtures for every test area.

Components are built once per run with the real componentize-py (cached by
content hash across runs) and compiled once (cached by content hash).
Registered for the whole suite by the root conftest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import helpers
import pytest
from helpers import CHAOS, EXAMPLES, HOSTILE, LIAR, bumped_copy, fresh_database

from thalo.cli.build import build_project
from thalo.store import open_store


@dataclass(frozen=True)
class Built:
    """A built aggregate project: its ESDL text and component bytes."""

    name: str
    schema_text: str
    wasm: bytes
    wasm_path: Path
    schema_path: Path


def _build(project: Path, out: Path) -> Built:
    result = build_project(project, out / f"{project.name}.wasm")
    schema_path = next(project.glob("*.esdl"))
    return Built(
        result.name,
        schema_path.read_text("utf-8"),
        result.path.read_bytes(),
        result.path,
        schema_path,
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """The three examples and the test guests, keyed by aggregate name."""
    out = tmp_path_factory.mktemp("built")
    projects = [
        EXAMPLES / "counter",
        EXAMPLES / "bank_account",
        EXAMPLES / "todos",
        CHAOS,
        LIAR,
        HOSTILE,
    ]
    modules = [_build(p, out) for p in projects]
    return {m.name: m for m in modules}


@pytest.fixture(scope="session")
def counter_v2(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The counter example rebuilt as version 0.2.0."""
    out = tmp_path_factory.mktemp("counter-v2")
    return _build(bumped_copy(EXAMPLES / "counter", out / "counter", "0.2.0"), out)


@pytest.fixture(scope="session")
def bank_account_versions(
    tmp_path_factory: pytest.TempPathFactory, built: dict[str, Built]
) -> list[Built]:
    """bank_account 0.1.0 to 0.10.0: ten builds (cached by content like every build)."""
    out = tmp_path_factory.mktemp("bank-account-versions")
    later = [
        _build(bumped_copy(EXAMPLES / "bank_account", out / f"v{minor}", f"0.{minor}.0"), out)
        for minor in range(2, 11)
    ]
    return [built["BankAccount"], *later]


@pytest.fixture(scope="session")
def bank_v2(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """bank_account 0.2.0 whose DepositedFunds gained fields (helpers.bank_account_v2)."""
    out = tmp_path_factory.mktemp("bank-v2")
    return _build(helpers.bank_account_v2(out / "bank_account"), out)


@pytest.fixture(scope="session")
def bank_v2_without_hook(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``bank_v2`` without its upcast hook: deposits stored by 0.1.0 lack ``currency``."""
    out = tmp_path_factory.mktemp("bank-v2-no-hook")
    return _build(helpers.bank_account_v2(out / "bank_account", hook=False), out)


@pytest.fixture(scope="session")
def bank_ts_v2(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """bank_account-ts 0.2.0: the TypeScript twin of ``bank_v2`` (helpers.bank_account_ts_v2)."""
    out = tmp_path_factory.mktemp("bank-ts-v2")
    return _build(helpers.bank_account_ts_v2(out / "bank_account-ts"), out)


@pytest.fixture(scope="session")
def built_ts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """The TypeScript examples built with componentize-js, keyed by aggregate name."""
    out = tmp_path_factory.mktemp("built-ts")
    projects = [EXAMPLES / "counter-ts", EXAMPLES / "bank_account-ts"]
    return {m.name: m for m in (_build(p, out) for p in projects)}


@pytest.fixture(scope="session")
def counter_ts_v2(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """examples/counter-ts rebuilt as version 0.2.0 (the TypeScript twin of counter_v2)."""
    out = tmp_path_factory.mktemp("counter-ts-v2")
    return _build(bumped_copy(EXAMPLES / "counter-ts", out / "counter-ts", "0.2.0"), out)


async def publish_all(url: str, built: dict[str, Built]) -> None:
    from thalo.registry import Registry

    async with open_store(url) as store:
        registry = Registry(store)
        for module in built.values():
            await registry.publish(module.schema_text, module.wasm)


@pytest.fixture(scope="session")
def published_sqlite(tmp_path_factory: pytest.TempPathFactory, built: dict[str, Built]) -> Path:
    """An SQLite store file with every test module published: tests copy it."""
    path = tmp_path_factory.mktemp("published") / "template.db"
    asyncio.run(publish_all(f"sqlite:///{path.as_posix()}", built))
    return path


@pytest.fixture(scope="session")
def published_postgres(postgres_url: str, built: dict[str, Built]) -> Iterator[str]:
    """A Message DB database of this session's own with every test module published.

    Fresh, so that guests changed since an earlier run publish as 0.1.0 again
    (the registry rightly refuses other bytes under a published version).
    """
    with fresh_database(postgres_url) as url:
        asyncio.run(publish_all(url, built))
        yield url
