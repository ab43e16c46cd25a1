"""The guest conformance suite: one scenario per ESDL, run against any component built from it.

A :class:`Scenario` is written in the language of the contract only (commands,
payloads, the events, refusals and states they must give), so it checks a guest
written in any language without change. :func:`run_scenario` publishes the
component into a fresh SQLite store, runs every step through the real runtime
(snapshots every two events, so restores are exercised), then rebuilds each
entity from its snapshot and, separately, by replaying every event, and returns a
:class:`Transcript`. Two builds of one ESDL conform to each other when their
transcripts are equal: same events, refusals, states, snapshots, stream contents::

    python = run_scenario(python_wasm, BANK_ACCOUNT, tmp_path / "py")
    typescript = run_scenario(ts_wasm, BANK_ACCOUNT, tmp_path / "ts")
    assert python == typescript

Any step whose outcome differs from the scenario raises ``AssertionError`` naming it.
"""

from __future__ import annotations

__all__ = ["BANK_ACCOUNT", "COUNTER", "Scenario", "Step", "Transcript", "run_scenario"]

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thalo.core import snapshot_stream_name
from thalo.errors import CommandRejected
from thalo.registry import Registry
from thalo.runtime import Runtime
from thalo.store import open_store

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Step:
    """One command and what it must give: ``events``, or a refusal containing ``rejected``.

    ``command_id`` makes the command idempotent; ``duplicate`` says this step repeats an
    earlier command id, so it must answer the first execution's events and write nothing.
    """

    entity: str
    command: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    rejected: str | None = None
    command_id: str | None = None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    """Steps against one aggregate and the state each entity must end in (its snapshot)."""

    aggregate: str
    steps: tuple[Step, ...]
    states: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a component did with a scenario; equal transcripts mean conforming guests."""

    outcomes: tuple[Any, ...]
    states: Mapping[str, Any]
    replayed: Mapping[str, Any]
    snapshots: Mapping[str, tuple[Any, ...]]
    streams: Mapping[str, tuple[Event, ...]]


def run_scenario(wasm: bytes, scenario: Scenario, workdir: Path) -> Transcript:
    """Runs ``scenario`` on component ``wasm`` in a new store under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(workdir / 'conformance.db').as_posix()}"
    return asyncio.run(_run(wasm, scenario, url))


def _schema_of(wasm: bytes) -> str:
    from thalo.wasm import load_module

    with load_module(wasm, max_instances=1) as module:
        return module.schema


async def _run(wasm: bytes, scenario: Scenario, url: str) -> Transcript:
    async with open_store(url) as store:
        schema = await asyncio.to_thread(_schema_of, wasm)
        record = await Registry(store).publish(schema, wasm)
        if record.name != scenario.aggregate:
            raise AssertionError(
                f"the component is {record.name}, the scenario {scenario.aggregate}"
            )
        outcomes = []
        async with Runtime(store, snapshot_every=2) as runtime:
            first: dict[str, tuple[Event, ...]] = {}
            for index, step in enumerate(scenario.steps):
                outcome = await _step(runtime, scenario.aggregate, step)
                _check(index, step, outcome, first)
                outcomes.append(outcome)
        entities = sorted(scenario.states)
        states, replayed, snapshots, streams = {}, {}, {}, {}
        async with Runtime(store, snapshot_every=0) as fresh:  # nothing cached: rebuilt
            future = datetime(9999, 1, 1, tzinfo=UTC)
            for entity in entities:
                states[entity] = (await fresh.state(scenario.aggregate, entity)).state
                # at_time replays every event, never a snapshot.
                replay = await fresh.state(scenario.aggregate, entity, at_time=future)
                replayed[entity] = replay.state
                stream = f"{scenario.aggregate[:1].lower()}{scenario.aggregate[1:]}-{entity}"
                messages = await store.get_stream_messages(stream, 0, -1)
                streams[entity] = tuple((m.type, m.data) for m in messages)
                saved = await store.get_stream_messages(
                    snapshot_stream_name(scenario.aggregate, entity), 0, -1
                )
                snapshots[entity] = tuple(m.data for m in saved)
        for entity in entities:
            expected = dict(scenario.states[entity])
            for label, found in (("rebuilt", states[entity]), ("replayed", replayed[entity])):
                if found != expected:
                    raise AssertionError(
                        f"{entity} {label}: state {found!r}, expected {expected!r}"
                    )
        return Transcript(tuple(outcomes), states, replayed, snapshots, streams)


async def _step(runtime: Runtime, aggregate: str, step: Step) -> Any:
    try:
        recorded = await runtime.record(
            aggregate,
            step.entity,
            step.command,
            dict(step.payload),
            command_id=step.command_id,
            read_back=True,
        )
    except CommandRejected as exc:
        return ("rejected", exc.reason)
    events = tuple((m.type, json.loads(json.dumps(m.data))) for m in recorded.events)
    return ("events", events, recorded.duplicate)


def _check(index: int, step: Step, outcome: Any, first: dict[str, tuple[Event, ...]]) -> None:
    where = f"step {index} ({step.entity} {step.command} {dict(step.payload)})"
    if step.rejected is not None:
        if outcome[0] != "rejected" or step.rejected not in outcome[1]:
            raise AssertionError(
                f"{where}: expected a refusal with {step.rejected!r}, got {outcome}"
            )
        return
    if outcome[0] != "events":
        raise AssertionError(f"{where}: expected events, got {outcome}")
    expected = tuple((kind, dict(data)) for kind, data in step.events)
    if step.duplicate:
        expected = first[str(step.command_id)]
    if outcome[1] != expected:
        raise AssertionError(f"{where}: events {outcome[1]!r}, expected {expected!r}")
    if outcome[2] != step.duplicate:
        raise AssertionError(f"{where}: duplicate={outcome[2]}, expected {step.duplicate}")
    if step.command_id is not None and not step.duplicate:
        first[step.command_id] = outcome[1]


def _opened(balance: int) -> Event:
    return ("OpenedAccount", {"initial_balance": balance})


BANK_ACCOUNT = Scenario(
    aggregate="BankAccount",
    steps=(
        Step("acc-1", "open_account", {"initial_balance": 100}, (_opened(100),)),
        Step("acc-1", "open_account", {"initial_balance": 5}, rejected="already open"),
        Step(
            "acc-1",
            "deposit_funds",
            {"amount": 50},
            (("DepositedFunds", {"amount": 50, "balance": 150}),),
            command_id="dep-1",
        ),
        Step("acc-1", "deposit_funds", {"amount": 50}, command_id="dep-1", duplicate=True),
        Step("acc-1", "withdraw_funds", {"amount": 500}, rejected="insufficient funds"),
        Step("acc-1", "withdraw_funds", {"amount": 0}, rejected="must be positive"),
        Step(
            "acc-1",
            "withdraw_funds",
            {"amount": 150},
            (("WithdrewFunds", {"amount": 150, "balance": 0}),),
        ),
        Step("acc-1", "close_account", {}, (("ClosedAccount", {}),)),
        Step("acc-1", "deposit_funds", {"amount": 1}, rejected="closed"),
        Step("acc-2", "deposit_funds", {"amount": 1}, rejected="not open"),
        Step("acc-2", "open_account", {"initial_balance": 0}, (_opened(0),)),
        Step(
            "acc-2",
            "deposit_funds",
            {"amount": 7},
            (("DepositedFunds", {"amount": 7, "balance": 7}),),
        ),
        Step("acc-2", "close_account", {}, rejected="zero balance"),
        Step("acc-2", "open_account", {"initial_balance": -1}, rejected="already open"),
    ),
    states={
        "acc-1": {"balance": 0, "closed": True, "opened": True},
        "acc-2": {"balance": 7, "closed": False, "opened": True},
    },
)

COUNTER = Scenario(
    aggregate="Counter",
    steps=(
        Step(
            "c-1",
            "increment",
            {"amount": 3},
            (("Incremented", {"amount": 3, "count": 3, "sequence": None}),),
        ),
        Step(
            "c-1",
            "decrement",
            {"amount": 5},
            (("Decremented", {"amount": 5, "count": -2, "sequence": None}),),
        ),
        Step("c-1", "increment", {"amount": 0}, rejected="must be positive"),
        Step(
            "c-1",
            "increment",
            {"amount": 4},
            (("Incremented", {"amount": 4, "count": 2, "sequence": None}),),
            command_id="inc-4",
        ),
        Step("c-1", "increment", {"amount": 4}, command_id="inc-4", duplicate=True),
    ),
    states={"c-1": {"count": 2, "sequence": None}},
)
