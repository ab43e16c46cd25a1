"""TypeScript guests built with componentize-js: the contract, the sandbox, the budgets.

The same host (thalo.wasm) runs them as it runs Python guests; these tests prove a
JavaScript engine inside a component keeps every promise docs/contract.md makes.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from thalo.cli.build import build_project
from thalo.errors import BuildError, GuestOutOfMemory, GuestTimeout, GuestTrap
from thalo.esdl import parse_file
from thalo.wasm import EntityLost, GuestIgnored, GuestRejected, WasmModule, load_module
from thalo.wasm.engine import engine
from thalo.wasm.module import PROVIDED_IMPORTS

pytestmark = pytest.mark.wasm

CTX = {"streamName": "chaos-x", "time": "2026-11-27T14:00:00.123456+00:00"}
COUNTER_TS = Path(__file__).resolve().parents[2] / "examples" / "counter-ts"


def test_a_ts_component_imports_nothing_but_the_host(guests: dict[str, Any]) -> None:
    module = load_module(guests["counter-ts"].wasm)
    imports = set(module.component.type.imports(engine()))
    assert imports and imports <= set(PROVIDED_IMPORTS)  # no wasi:* at all
    assert module.name == "Counter"
    assert module.schema == parse_file(COUNTER_TS / "counter.esdl").to_esdl()


def test_counter_ts_answers_every_export(counter_ts: WasmModule) -> None:
    entity = counter_ts.entity("c-1")
    ctx = {"streamName": "counter-c-1", "position": 4}
    assert entity.execute(ctx, "increment", {"amount": 2}) == [
        ("Incremented", {"amount": 2, "count": 2, "sequence": 4})
    ]
    assert entity.handle({**ctx, "position": 5}, "decrement", {"amount": 5}) == [
        ("Decremented", {"amount": 5, "count": -3, "sequence": 5})
    ]
    assert json.loads(entity.snapshot()) == {"count": 2, "sequence": 4}
    with pytest.raises(GuestIgnored):  # position 4 is already processed
        entity.execute(ctx, "increment", {"amount": 1})
    with pytest.raises(GuestRejected, match="amount must be positive, got 0"):
        entity.execute({"streamName": "counter-c-1"}, "increment", {"amount": 0})
    restored = counter_ts.restore("c-2", '{"count": 40, "sequence": null}')
    restored.apply([("Incremented", {"amount": 2, "count": 42})])
    assert json.loads(restored.snapshot()) == {"count": 42, "sequence": None}


@pytest.mark.parametrize(
    ("call", "args", "answer"),
    [
        ("handle", ({"streamName": "c"}, "nope", {}), "unknown-command"),
        ("handle", ({"streamName": "c"}, "increment", {}), "decode"),
        ("handle", ({"streamName": 7}, "increment", {"amount": 1}), "decode"),
        ("apply", ([("Nope", {})],), "unknown-event"),
        ("apply", ([("Incremented", {"amount": 1})],), "decode"),
    ],
)
def test_bad_input_gets_the_contract_error_and_leaves_state_alone(
    counter_ts: WasmModule, call: str, args: tuple[object, ...], answer: str
) -> None:
    entity = counter_ts.entity("c-1")
    entity.apply([("Incremented", {"amount": 3, "count": 3})])
    with pytest.raises(Exception, match=answer):
        getattr(entity, call)(*args)
    assert json.loads(entity.snapshot())["count"] == 3 and entity.alive


def test_a_bad_snapshot_is_a_decode_answer(counter_ts: WasmModule) -> None:
    with pytest.raises(Exception, match="decode"):
        counter_ts.restore("c-1", "[1, 2]")


def test_an_exception_traps_with_the_guest_frames_and_the_next_call_works(
    chaos_ts: WasmModule,
) -> None:
    lost: list[list[str]] = []
    chaos_ts.on_instance_lost = lambda ids, error: lost.append(ids)
    victim, neighbour = chaos_ts.entity("a"), chaos_ts.entity("b")
    with pytest.raises(GuestTrap, match="Error: boom") as caught:
        victim.execute(CTX, "crash", {"message": "boom"})
    assert "handleCrash" in caught.value.message  # the stack, logged before the trap
    assert not neighbour.alive and sorted(lost[0]) == ["a", "b"]
    with pytest.raises(EntityLost):
        neighbour.handle(CTX, "chat", {"message": "hi"})
    assert chaos_ts.entity("b").execute(CTX, "chat", {"message": "hi"}) == [
        ("Done", {"detail": "chatted"})
    ]
    assert chaos_ts.instances_started == 2


def test_an_undeclared_event_is_a_trap(chaos_ts: WasmModule) -> None:
    with pytest.raises(GuestTrap, match="returned a Other event"):
        chaos_ts.entity("x").handle(CTX, "wrong_event")


def test_an_endless_loop_times_out_and_the_host_goes_on(chaos_ts: WasmModule) -> None:
    with pytest.raises(GuestTimeout, match=r"time budget of 0\.5 s"):
        chaos_ts.entity("x").handle(CTX, "spin")
    assert chaos_ts.entity("y").handle(CTX, "chat", {"message": "still here"})


def test_unbounded_allocation_hits_the_memory_cap(chaos_ts: WasmModule) -> None:
    with pytest.raises(GuestOutOfMemory, match="out of memory: the JavaScript engine"):
        chaos_ts.entity("x").handle(CTX, "hog", {"megabytes": 200})
    assert chaos_ts.entity("y").handle(CTX, "hog", {"megabytes": 1}) == [
        ("Done", {"detail": "held 1 blocks"})
    ]


def test_no_environment_reaches_the_guest(chaos_ts: WasmModule) -> None:
    assert chaos_ts.entity("x").handle(CTX, "read_env", {"name": "PATH"}) == [
        ("Done", {"detail": "no environment"})
    ]


def test_logs_and_console_reach_the_host_logger_tagged(
    chaos_ts: WasmModule, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="thalo.guest"):
        chaos_ts.entity("e-9").handle(CTX, "chat", {"message": "hello host"})
    lines = [r.getMessage() for r in caplog.records if r.name == "thalo.guest"]
    assert "[Chaos e-9] hello host" in lines
    assert "[Chaos e-9] console: hello host" in lines


def test_answers_with_and_without_reason(chaos_ts: WasmModule) -> None:
    entity = chaos_ts.entity("x")
    with pytest.raises(GuestRejected, match="no way"):
        entity.handle(CTX, "refuse", {"reason": "no way"})
    with pytest.raises(GuestIgnored) as ignored:
        entity.handle(CTX, "skip", {"reason": None})
    assert ignored.value.reason is None
    with pytest.raises(GuestIgnored, match="seen it"):
        entity.handle(CTX, "skip", {"reason": "seen it"})


def test_the_clock_reads_the_command_time(chaos_ts: WasmModule) -> None:
    (event,) = chaos_ts.entity("x").handle(CTX, "clock")
    millis = int(datetime.fromisoformat(str(CTX["time"])).timestamp() * 1000)
    assert event[1]["detail"] == f"{millis} 2026-11-27T14:00:00.123Z 0"
    (later,) = chaos_ts.entity("y").handle({**CTX, "time": None}, "clock")
    assert later[1]["detail"] == "0 1970-01-01T00:00:00.000Z 0"


def test_random_is_seeded_per_entity_and_command(chaos_ts: WasmModule) -> None:
    def roll(entity_id: str, ctx: dict[str, object]) -> str:
        (event,) = chaos_ts.entity(entity_id).handle(ctx, "roll")
        return str(event[1]["detail"])

    first = roll("x", {**CTX, "messageId": "m-1"})
    assert roll("x", {**CTX, "messageId": "m-1"}) == first  # the same command replays
    assert roll("y", {**CTX, "messageId": "m-1"}) != first  # another entity
    assert roll("x", {**CTX, "messageId": "m-2"}) != first  # another command
    numbers = first.split(" ")
    assert 0 <= float(numbers[0]) < 1 and numbers[0] != numbers[1]


def test_random_while_applying_replays_by_position(chaos_ts: WasmModule) -> None:
    events = [{"type": "Done", "data": {"detail": "roll"}, "position": p} for p in (0, 1)]
    a, b = chaos_ts.entity("x"), chaos_ts.entity("x")
    a.apply(events)
    b.apply(events[:1])
    b.apply(events[1:])
    assert json.loads(a.snapshot())["rolls"] == json.loads(b.snapshot())["rolls"]
    assert len(set(json.loads(a.snapshot())["rolls"])) == 2


def _copy(tmp_path: Path) -> Path:
    project = tmp_path / "counter-ts"
    shutil.copytree(COUNTER_TS, project, ignore=shutil.ignore_patterns("node_modules", "build"))
    return project


def test_a_type_error_names_file_and_line(tmp_path: Path) -> None:
    project = _copy(tmp_path)
    source = project / "src" / "counter.ts"
    text = source.read_text("utf-8").replace("count: this.count + amount", "count: 'many'")
    source.write_text(text, "utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "'many'" in t)
    with pytest.raises(BuildError, match=rf"src/counter\.ts:{line}:\d+: error TS2322"):
        build_project(project)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("node:fs", "guests get no Node APIs"),
        ("net", "guests get no network"),
        ("lodash", "neither a file of this project nor @thalo/sdk"),
    ],
)
def test_an_import_the_sandbox_cannot_serve_names_file_and_line(
    tmp_path: Path, module: str, message: str
) -> None:
    project = _copy(tmp_path)
    source = project / "src" / "counter.ts"
    used = f'// @ts-nocheck\nimport * as it from "{module}";\nexport const leaked = it;\n'
    source.write_text(used + source.read_text("utf-8"), "utf-8")
    with pytest.raises(BuildError, match=rf"src/counter\.ts:2:\d+: imports .*{message}"):
        build_project(project)


def test_a_missing_class_is_named(tmp_path: Path) -> None:
    project = _copy(tmp_path)
    source = project / "src" / "counter.ts"
    source.write_text(source.read_text("utf-8").replace("class Counter", "class Tally"), "utf-8")
    with pytest.raises(BuildError, match=r"exports no class 'Counter' \(it defines Tally\)"):
        build_project(project)
