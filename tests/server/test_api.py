"""Every endpoint of `thalo serve` over real HTTP, on both stores (docs/http.md)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from helpers import unique
from serving import JSON, Served, post, problem

pytestmark = pytest.mark.wasm
# --- commands ------------------------------------------------------------------------


def test_a_command_returns_its_recorded_events_and_the_version(http: httpx.Client) -> None:
    entity = unique("acc")
    opened = post(http, "BankAccount", entity, "open_account", {"initial_balance": 10})
    assert opened.status_code == 200, opened.text
    assert opened.headers["etag"] == '"0"'
    body = opened.json()
    assert (body["aggregate"], body["id"], body["command"]) == (
        "BankAccount",
        entity,
        "open_account",
    )
    assert (body["version"], body["duplicate"]) == (0, False)
    [event] = body["events"]
    assert event["type"] == "OpenedAccount" and event["data"] == {"initial_balance": 10}
    assert event["stream_name"] == f"bankAccount-{entity}" and event["position"] == 0
    assert event["global_position"] >= 1 and datetime.fromisoformat(event["time"]).tzinfo
    deposit = post(http, "BankAccount", entity, "deposit_funds", {"amount": 5})
    assert deposit.headers["etag"] == '"1"'
    assert deposit.json()["events"][0]["data"] == {"amount": 5, "balance": 15}


def test_an_idempotency_key_never_executes_twice(http: httpx.Client) -> None:
    entity = unique("acc")
    post(http, "BankAccount", entity, "open_account", {"initial_balance": 0})
    first = post(
        http, "BankAccount", entity, "deposit_funds", {"amount": 7}, Idempotency_Key="dep-1"
    )
    again = post(
        http, "BankAccount", entity, "deposit_funds", {"amount": 7}, Idempotency_Key="dep-1"
    )
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["events"] == first.json()["events"]
    stream = http.get(f"/streams/bankAccount-{entity}").json()["messages"]
    assert [m["type"] for m in stream] == ["OpenedAccount", "DepositedFunds"]
    assert stream[1]["metadata"]["thaloCommandId"] == "dep-1"


def test_an_idempotency_key_reused_for_another_command_is_refused(http: httpx.Client) -> None:
    entity = unique("acc")
    post(http, "BankAccount", entity, "open_account", {"initial_balance": 9})
    post(http, "BankAccount", entity, "deposit_funds", {"amount": 1}, Idempotency_Key="k-9")
    reused = post(
        http, "BankAccount", entity, "withdraw_funds", {"amount": 1}, Idempotency_Key="k-9"
    )
    body = problem(reused, 422, "IdempotencyKeyReused")
    assert body["event_types"] == ["DepositedFunds"] and body["command_id"] == "k-9"
    assert len(http.get(f"/streams/bankAccount-{entity}").json()["messages"]) == 2


def test_if_match_guards_the_stream_version(http: httpx.Client) -> None:
    entity = unique("acc")
    # "-1": the entity must not exist yet
    created = post(
        http, "BankAccount", entity, "open_account", {"initial_balance": 1}, If_Match='"-1"'
    )
    assert created.status_code == 200
    stale = post(http, "BankAccount", entity, "deposit_funds", {"amount": 1}, If_Match='"-1"')
    body = problem(stale, 412, "WrongExpectedVersion")
    assert (body["expected"], body["actual"]) == (-1, 0)
    fresh = post(
        http,
        "BankAccount",
        entity,
        "deposit_funds",
        {"amount": 1},
        If_Match=created.headers["etag"],
    )
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"1"'
    problem(
        post(http, "BankAccount", entity, "deposit_funds", {"amount": 1}, If_Match="x"),
        400,
        "UsageError",
    )
    assert len(http.get(f"/streams/bankAccount-{entity}").json()["messages"]) == 2


def test_metadata_header_is_recorded_on_each_event(http: httpx.Client) -> None:
    entity = unique("acc")
    sent = post(
        http,
        "BankAccount",
        entity,
        "open_account",
        {"initial_balance": 3},
        Thalo_Metadata='{"userId": "u-7"}',
    )
    assert sent.json()["events"][0]["metadata"]["userId"] == "u-7"
    problem(
        post(http, "BankAccount", entity, "deposit_funds", {"amount": 1}, Thalo_Metadata="[1]"),
        400,
        "UsageError",
    )


def test_refusals_are_problems_with_the_runtime_s_codes(http: httpx.Client) -> None:
    entity = unique("acc")
    post(http, "BankAccount", entity, "open_account", {"initial_balance": 5})
    rejected = problem(
        post(http, "BankAccount", entity, "withdraw_funds", {"amount": 50}), 409, "CommandRejected"
    )
    assert rejected["type"] == "urn:thalo:problem:command-rejected"
    assert "insufficient funds" in rejected["reason"] and rejected["exit_code"] == 1
    invalid = problem(
        post(http, "BankAccount", entity, "deposit_funds", {"amount": "lots"}),
        422,
        "PayloadInvalid",
    )
    assert invalid["violations"][0]["path"] == "$.amount"
    problem(post(http, "Nope", entity, "x", {}), 404, "UnknownAggregate")
    unknown = problem(post(http, "BankAccount", entity, "rob", {}), 404, "UnknownCommand")
    assert "deposit_funds" in unknown["known"]
    problem(
        http.post(
            f"/aggregates/BankAccount/{entity}/commands/deposit_funds", content=b"{", headers=JSON
        ),
        400,
        "UsageError",
    )
    problem(post(http, "BankAccount", entity, "deposit_funds", [1, 2]), 400, "UsageError")
    problem(
        http.post(
            f"/aggregates/BankAccount/{entity}/commands/deposit_funds",
            content=b"amount=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
        "UnsupportedMediaType",
    )
    problem(http.get("/no/such/route"), 404, "NotFound")
    problem(http.delete("/modules"), 405, "UsageError")
    # none of the refusals wrote anything
    assert len(http.get(f"/streams/bankAccount-{entity}").json()["messages"]) == 1


def test_a_guest_fault_is_a_500_problem_and_the_server_keeps_serving(http: httpx.Client) -> None:
    entity = unique("chaos")
    crashed = problem(post(http, "Chaos", entity, "crash", {"message": "boom"}), 500, "GuestTrap")
    assert crashed["exit_code"] == 4
    problem(post(http, "Chaos", entity, "spin", {}), 500, "GuestTimeout")
    lied = problem(
        post(http, "Liar", unique("liar"), "lie", {"count": 1}), 500, "GuestOutputInvalid"
    )
    assert lied["violations"][0]["path"] == "$[0].data.count" and lied["exit_code"] == 4
    assert post(http, "Chaos", entity, "chat", {"message": "still here"}).status_code == 200


def test_async_commands_go_through_the_runner_and_are_idempotent(http: httpx.Client) -> None:
    entity = unique("acc")
    submitted = post(
        http,
        "BankAccount",
        entity,
        "open_account",
        {"initial_balance": 4},
        Idempotency_Key="open-1",
    )
    # a synchronous command with the key has run already; now the async path:
    sent = http.post(
        f"/aggregates/BankAccount/{entity}/commands/deposit_funds?async=true",
        content=b'{"amount": 6}',
        headers={**JSON, "Idempotency-Key": "dep-async"},
    )
    assert submitted.status_code == 200
    assert sent.status_code == 202, sent.text
    location = sent.headers["location"]
    assert location.startswith("/replies/") and sent.json()["status"] == "submitted"
    done = http.get(location, params={"wait": 30})
    assert done.status_code == 200, done.text
    assert done.json()["events"][0]["data"] == {"amount": 6, "balance": 10}
    assert done.headers["etag"] == '"1"'
    # the same key again: the same reply, and nothing new is written
    repeat = http.post(
        f"/aggregates/BankAccount/{entity}/commands/deposit_funds?async=true",
        content=b'{"amount": 6}',
        headers={**JSON, "Idempotency-Key": "dep-async"},
    )
    assert repeat.status_code == 202 and repeat.headers["location"] == location
    time.sleep(0.5)
    assert len(http.get(f"/streams/bankAccount-{entity}").json()["messages"]) == 2
    # a refused async command: its problem is the runtime's own
    refused = http.post(
        f"/aggregates/BankAccount/{entity}/commands/withdraw_funds?async=true",
        content=b'{"amount": 600}',
        headers=JSON,
    )
    outcome = http.get(refused.headers["location"], params={"wait": 30})
    assert problem(outcome, 409, "CommandRejected")["exit_code"] == 1
    problem(http.get("/replies/not-a-uuid"), 404, "NotFound")
    pending = http.get("/replies/00000000-0000-4000-8000-000000000000")
    assert pending.status_code == 202 and pending.headers["retry-after"]


# --- entities, streams, categories ----------------------------------------------------


def test_ids_may_hold_slashes_and_other_odd_characters(http: httpx.Client) -> None:
    from urllib.parse import quote

    entity = unique("a/b:c+d")
    path = quote(entity, safe="")
    done = http.post(
        f"/aggregates/Counter/{path}/commands/increment", content=b'{"amount": 2}', headers=JSON
    )
    assert done.status_code == 200, done.text
    assert done.json()["id"] == entity
    assert done.json()["events"][0]["stream_name"] == f"counter-{entity}"
    assert http.get(f"/aggregates/Counter/{path}").json()["state"]["count"] == 2
    stream = http.get(f"/streams/{quote('counter-' + entity, safe='')}").json()
    assert [m["data"]["amount"] for m in stream["messages"]] == [2]


def test_state_now_and_back_in_time(http: httpx.Client) -> None:
    entity = unique("acc")
    post(http, "BankAccount", entity, "open_account", {"initial_balance": 1})
    time.sleep(0.05)
    between = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    post(http, "BankAccount", entity, "deposit_funds", {"amount": 2})
    now = http.get(f"/aggregates/BankAccount/{entity}")
    assert now.status_code == 200 and now.headers["etag"] == '"1"'
    assert now.json()["version"] == 1 and now.json()["module_version"] == "0.1.0"
    at_0 = http.get(f"/aggregates/BankAccount/{entity}", params={"position": 0}).json()
    as_of = http.get(f"/aggregates/BankAccount/{entity}", params={"time": between}).json()
    assert at_0["version"] == as_of["version"] == 0
    assert at_0["state"] == as_of["state"] != now.json()["state"]
    problem(
        http.get(f"/aggregates/BankAccount/{entity}", params={"time": "yesterday"}),
        400,
        "UsageError",
    )
    problem(
        http.get(f"/aggregates/BankAccount/{entity}", params={"position": -1}), 400, "UsageError"
    )
    problem(http.get(f"/aggregates/Nope/{entity}"), 404, "UnknownAggregate")


def test_streams_page_by_position(http: httpx.Client) -> None:
    entity = unique("acc")
    post(http, "BankAccount", entity, "open_account", {"initial_balance": 0})
    for amount in (1, 2, 3):
        post(http, "BankAccount", entity, "deposit_funds", {"amount": amount})
    first = http.get(f"/streams/bankAccount-{entity}", params={"batch_size": 3}).json()
    assert [m["position"] for m in first["messages"]] == [0, 1, 2]
    rest = http.get(
        f"/streams/bankAccount-{entity}", params={"position": first["next_position"]}
    ).json()
    assert [m["position"] for m in rest["messages"]] == [3] and rest["next_position"] == 4
    empty = http.get(f"/streams/bankAccount-{entity}", params={"position": 4}).json()
    assert empty == {"messages": [], "next_position": 4}
    problem(http.get(f"/streams/bankAccount-{entity}", params={"batch_size": 0}), 400, "UsageError")
    problem(http.get("/streams/bad%20name"), 400, "InvalidStreamName")


def test_categories_page_by_global_position_with_groups(http: httpx.Client) -> None:
    entities = [unique("grp") for _ in range(6)]
    for entity in entities:
        post(http, "Counter", entity, "increment", {"amount": 1})
    everything: list[dict[str, Any]] = []
    position = 1
    while True:
        page = http.get(
            "/categories/counter", params={"position": position, "batch_size": 500}
        ).json()
        if not page["messages"]:
            break
        everything += page["messages"]
        position = page["next_position"]
    ours = [m for m in everything if m["stream_name"].split("-", 1)[1] in entities]
    assert len(ours) == 6
    globals_ = [m["global_position"] for m in everything]
    assert globals_ == sorted(globals_)
    halves = [
        {
            m["stream_name"]
            for m in http.get(
                "/categories/counter",
                params={
                    "batch_size": 10_000,
                    "consumer_group_member": member,
                    "consumer_group_size": 2,
                },
            ).json()["messages"]
        }
        for member in (0, 1)
    ]
    assert not halves[0] & halves[1]
    assert halves[0] | halves[1] == {m["stream_name"] for m in everything}
    problem(
        http.get(
            "/categories/counter", params={"consumer_group_member": 3, "consumer_group_size": 2}
        ),
        400,
        "InvalidStoreArgument",
    )


# --- modules ---------------------------------------------------------------------------


def test_modules_are_listed_with_schema_and_exports(http: httpx.Client) -> None:
    records = http.get("/modules").json()["modules"]
    names = {r["name"] for r in records}
    assert {"Counter", "BankAccount", "Chaos"} <= names
    detail = http.get("/modules/BankAccount").json()
    assert detail["latest"] == "0.1.0" and detail["versions"][0]["version"] == "0.1.0"
    assert "aggregate BankAccount" in detail["esdl"]
    assert detail["commands"]["deposit_funds"]["properties"]["amount"]["type"] == "integer"
    assert set(detail["events"]) == {
        "OpenedAccount",
        "DepositedFunds",
        "WithdrewFunds",
        "ClosedAccount",
    }
    problem(http.get("/modules/Nope"), 404, "ModuleNotFound")


# --- operations --------------------------------------------------------------------------


def test_health_readiness_and_metrics(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["modules"] >= 3
    entity = unique("acc")
    post(http, "BankAccount", entity, "open_account", {"initial_balance": 0})
    post(http, "BankAccount", entity, "withdraw_funds", {"amount": 1})
    metrics = http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text

    def value(line_start: str) -> float:
        found = [line for line in text.splitlines() if line.startswith(line_start)]
        assert found, f"no metric line starts with {line_start}"
        return float(found[0].rsplit(" ", 1)[1])

    assert value('thalo_commands_total{aggregate="BankAccount",outcome="ok"}') >= 1
    assert value('thalo_commands_total{aggregate="BankAccount",outcome="CommandRejected"}') >= 1
    assert value('thalo_command_duration_seconds_count{aggregate="BankAccount"}') >= 2
    assert value("thalo_entity_cache_misses_total") >= 1
    assert value("thalo_entity_cache_hits_total") >= 1
    assert value("thalo_store_write_duration_seconds_count") >= 1
    for name in (
        "thalo_entity_rebuilds_total",
        "thalo_concurrency_conflicts_total",
        'thalo_guest_faults_total{kind="trap"}',
        'thalo_guest_faults_total{kind="timeout"}',
        "thalo_guest_instances_retired_total",
        'thalo_http_requests_total{method="POST"',
        "thalo_http_request_duration_seconds_bucket",
    ):
        value(name)


def test_the_openapi_document_types_every_published_command(
    api: Served, http: httpx.Client
) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    operation = document["paths"]["/aggregates/BankAccount/{id}/commands/deposit_funds"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]
    docs = http.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text


def test_requests_are_logged_without_ids_payloads_or_tokens(
    api: Served, http: httpx.Client
) -> None:
    entity = unique("secret-entity")
    post(http, "BankAccount", entity, "open_account", {"initial_balance": 424242})
    http.get(
        f"/aggregates/BankAccount/{entity}", headers={"Authorization": "Bearer sekrit-token-123"}
    )
    deadline = time.monotonic() + 5
    while (
        not any("BankAccount.open_account" in line for line in api.log)
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    log = "".join(api.log)
    assert "POST /aggregates/{aggregate}/{id}/commands/{command} 200" in log
    assert entity not in log and "424242" not in log and "sekrit" not in log
