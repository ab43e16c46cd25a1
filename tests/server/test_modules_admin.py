"""Retiring module versions and collecting the registry's garbage over HTTP (admin routes).

On both backends, on a store of this module's own: these tests retire versions
and delete a version's row, which the shared stores of other tests must not see.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from components import Built, publish_all
from helpers import EXAMPLES, fresh_database, unique
from serving import ADMIN_TOKEN, Served, post, problem, serving

from thalo.registry import Registry
from thalo.store import open_store

pytestmark = pytest.mark.wasm

CLIENT = "client-token-modules-aaaa"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)]
)
def own_store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    built: dict[str, Built],
) -> Iterator[str]:
    """A store with every test module published, for this module alone."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("published_sqlite")
        target = tmp_path_factory.mktemp("modules-admin") / "store.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target.as_posix()}"
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        asyncio.run(publish_all(url, built))
        yield url


@pytest.fixture(scope="module")
def served(own_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with the admin token and a token file holding one client token."""
    tokens = tmp_path_factory.mktemp("modules-tokens") / "tokens.txt"
    tokens.write_text(f"{CLIENT}\n")
    # An hour between registry checks: what a command sees at once comes from the recheck.
    args = ("--token-file", str(tokens), "--module-check-interval", "3600")
    with serving(own_store, *args, capture=True) as server:
        yield server


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as client:
        yield client


def records(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = http.get("/modules", headers=ADMIN).json()["modules"]
    return [r for r in listed if r["name"] == name]


def test_retire_over_http_stops_new_commands_at_once(http: httpx.Client) -> None:
    entity = unique("c")
    ran = post(http, "Counter", entity, "increment", {"amount": 1}, ADMIN)
    assert ran.status_code == 200, ran.text

    retired = http.post("/modules/Counter/0.1.0/retire", headers=ADMIN)
    assert retired.status_code == 200, retired.text
    record = retired.json()
    assert (record["name"], record["version"]) == ("Counter", "0.1.0")
    assert record["retired_at"] is not None
    assert [record] == records(http, "Counter"), "the record shape publish and list return"

    refused = post(http, "Counter", entity, "increment", {"amount": 1}, ADMIN)
    # The server checks the registry once an hour here: only the retire route's
    # recheck makes this command see the retirement.
    body = problem(refused, 409, "ModuleRetired")
    assert "every version is retired" in body["detail"]

    again = http.post("/modules/Counter/0.1.0/retire", headers=ADMIN)
    assert again.status_code == 200 and again.json() == record, "idempotent"
    # The history the retired version wrote still replays.
    state = http.get(f"/aggregates/Counter/{entity}", headers=ADMIN)
    assert state.status_code == 200 and state.json()["state"]["count"] == 1
    assert http.get("/modules/Counter", headers=ADMIN).json()["versions"] == [record]


def test_retiring_what_is_not_published_is_404(http: httpx.Client) -> None:
    before = http.get("/modules", headers=ADMIN).json()
    for path in ("/modules/BankAccount/9.9.9/retire", "/modules/Nope/0.1.0/retire"):
        body = problem(http.post(path, headers=ADMIN), 404, "ModuleNotFound")
        assert "is not published" in body["detail"]
    assert http.get("/modules", headers=ADMIN).json() == before


def test_retire_and_gc_need_the_admin_token(
    http: httpx.Client, served: Served, own_store: str
) -> None:
    for path in ("/modules/Todos/0.1.0/retire", "/modules/gc"):
        refused = http.post(path)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        problem(refused, 401, "Unauthorized")
        wrong = {"Authorization": "Bearer wrong-token-cccccccc"}
        problem(http.post(path, headers=wrong), 401, "Unauthorized")
        client = {"Authorization": f"Bearer {CLIENT}"}
        assert (
            "not a client token"
            in problem(http.post(path, headers=client), 403, "Forbidden")["detail"]
        )
    assert records(http, "Todos")[0]["retired_at"] is None, "nothing was retired"
    added = post(
        http, "Todos", unique("t"), "add_todo", {"id": "1", "description": "still served"}, ADMIN
    )
    assert added.status_code == 200, added.text

    with serving(own_store, admin_token=None, capture=True) as unguarded:
        for path, action in (
            ("/modules/Todos/0.1.0/retire", "retiring modules"),
            ("/modules/gc", "collecting module garbage"),
        ):
            disabled = httpx.post(f"{unguarded.url}{path}", headers=ADMIN, timeout=60)
            detail = problem(disabled, 403, "Forbidden")["detail"]
            assert (
                detail.startswith(f"{action} over HTTP is disabled") and "--admin-token" in detail
            )
    assert records(http, "Todos")[0]["retired_at"] is None


async def _delete_version(store_url: str, name: str) -> tuple[str, int]:
    """Delete ``name``'s only version row by hand (as if published by mistake, and
    removed); its blob's encoding and stored size."""
    async with open_store(store_url) as store, store.transaction() as tx:
        rows = await tx.execute(
            "SELECT b.encoding, LENGTH(b.data) FROM thalo_modules m"
            " JOIN thalo_module_blobs b ON b.sha256 = m.sha256 WHERE m.name = %s",
            (name,),
        )
        await tx.execute("DELETE FROM thalo_modules WHERE name = %s", (name,))
    return str(rows[0][0]), int(rows[0][1])


async def _usage(store_url: str) -> dict[str, int]:
    async with open_store(store_url) as store:
        return (await Registry(store).usage()).to_dict()


def test_gc_over_http_reports_the_figures(http: httpx.Client, own_store: str) -> None:
    kept = http.post("/modules/gc", headers=ADMIN)
    assert kept.status_code == 200, kept.text
    figures = kept.json()
    assert figures == {"removed": 0, "freed_bytes": 0, **asyncio.run(_usage(own_store))}
    assert figures["blobs"] >= 6 and figures["stored_bytes"] < figures["raw_bytes"]

    # A delta no version references any more: gc removes exactly it.
    encoding, stored = asyncio.run(_delete_version(own_store, "Liar"))
    assert encoding == "zstd-delta", "a delta is nobody's base"
    collected = http.post("/modules/gc", headers=ADMIN).json()
    assert (collected["removed"], collected["freed_bytes"]) == (1, stored)
    assert collected["blobs"] == figures["blobs"] - 1
    assert collected["stored_bytes"] == figures["stored_bytes"] - stored
    assert {k: collected[k] for k in ("blobs", "raw_bytes", "stored_bytes")} == asyncio.run(
        _usage(own_store)
    )


COUNTER_ESDL = (EXAMPLES / "counter" / "counter.esdl").read_text("utf-8")


def counter_esdl(version: str, old: str = "", new: str = "") -> str:
    text = COUNTER_ESDL.replace('version = "0.1.0"', f'version = "{version}"')
    assert old in text
    return text.replace(old, new, 1) if old else text


def test_the_compatibility_check_answers_before_any_build(http: httpx.Client) -> None:
    """``POST /modules/compatibility``: what ``thalo publish --url`` asks before building."""
    check = "/modules/compatibility"
    fine = http.post(
        check,
        json={
            "schema": counter_esdl(
                "0.2.0", "  sequence: Long?\n}", "  sequence: Long?\n  note: String?\n}"
            )
        },
        headers=ADMIN,
    )
    assert fine.status_code == 200, fine.text
    body = fine.json()
    assert body["diff"]["old_version"] == "0.1.0" and body["diff"]["breaking"] is False
    assert body["rendered"].splitlines() == [
        "Counter 0.1.0 -> 0.2.0",
        "    Incremented.note: added, optional (String?)",
    ]

    retyped = counter_esdl(
        "0.2.0", "event Incremented {\n  amount: Int", "event Incremented {\n  amount: String"
    )
    refused = problem(
        http.post(check, json={"schema": retyped}, headers=ADMIN), 409, "IncompatibleSchema"
    )
    assert refused["changes"] == ["! Incremented.amount: retyped (Int -> String) — BREAKING"]
    allowed = http.post(
        check, params={"allow_breaking": "true"}, json={"schema": retyped}, headers=ADMIN
    )
    assert allowed.status_code == 200 and allowed.json()["diff"]["breaking"] is True

    broken = problem(
        http.post(check, json={"schema": "aggregate {"}, headers=ADMIN), 400, "SchemaError"
    )
    assert "1:" in broken["detail"]
    problem(http.post(check, json={"esdl": COUNTER_ESDL}, headers=ADMIN), 400, "UsageError")
    for headers in ({}, {"Authorization": f"Bearer {CLIENT}"}):
        assert http.post(check, json={"schema": retyped}, headers=headers).status_code in (401, 403)
    assert [r["version"] for r in records(http, "Counter")][-1] == "0.1.0", "nothing published"
