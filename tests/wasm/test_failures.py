"""Guests that crash, loop, hog memory or poke at the sandbox: the host survives each."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import pytest

from thalo.errors import GuestOutOfMemory, GuestTimeout, GuestTrap
from thalo.wasm import (
    EntityLost,
    GuestIgnored,
    GuestRejected,
    Limits,
    WasmModule,
    load_module,
)

pytestmark = pytest.mark.wasm

CTX = {"streamName": "chaos:command-x"}


@pytest.mark.parametrize("call", ["handle", "execute"])
def test_unexpected_exception_traps_loses_the_instance_and_the_next_call_works(
    chaos: WasmModule, call: str
) -> None:
    lost: list[tuple[list[str], Exception]] = []
    chaos.on_instance_lost = lambda ids, error: lost.append((ids, error))
    victim, neighbour = chaos.entity("a"), chaos.entity("b")
    with pytest.raises(GuestTrap) as caught:
        getattr(victim, call)(CTX, "crash", {"message": "boom"})
    assert "RuntimeError: boom" in caught.value.message
    assert "chaos.py" in caught.value.message  # the guest's frames, logged before the trap
    assert caught.value.exit_code == 4
    assert not victim.alive and not neighbour.alive
    with pytest.raises(EntityLost, match="'b' is gone"):
        getattr(neighbour, call)(CTX, "chat", {"message": "hi"})
    assert lost and sorted(lost[0][0]) == ["a", "b"] and lost[0][1] is caught.value
    fresh = chaos.entity("b")
    assert getattr(fresh, call)(CTX, "chat", {"message": "hi"}) == [("Done", {"detail": "chatted"})]
    assert json.loads(fresh.snapshot()) == {"seen": 1 if call == "execute" else 0}
    assert chaos.instances == 1 and chaos.instances_started == 2


@pytest.mark.parametrize(
    ("name", "payload", "error", "message"),
    [
        ("wrong_event", {}, GuestTrap, "handle_wrong_event returned a Other event"),
        ("spin", {}, GuestTimeout, r"time budget of 0\.5 s"),
        ("hog", {"megabytes": 200}, GuestOutOfMemory, "out of memory"),
    ],
)
def test_execute_traps_like_handle(
    chaos: WasmModule, name: str, payload: dict[str, object], error: type[Exception], message: str
) -> None:
    entity = chaos.entity("x")
    with pytest.raises(error, match=message):
        entity.execute(CTX, name, payload)
    assert not entity.alive
    assert chaos.entity("y").execute(CTX, "chat", {"message": "after"}) == [
        ("Done", {"detail": "chatted"})
    ]
    assert chaos.instances_started == 2


def test_an_undeclared_event_is_a_trap(chaos: WasmModule) -> None:
    with pytest.raises(GuestTrap, match="TypeError: handle_wrong_event returned a Other event"):
        chaos.entity("x").handle(CTX, "wrong_event")


def test_a_payload_of_the_wrong_type_is_a_trap(counter: WasmModule) -> None:
    with pytest.raises(GuestTrap, match="TypeError"):
        counter.entity("c-1").handle({"streamName": "s"}, "increment", {"amount": "x"})


def test_infinite_loop_times_out_and_the_host_goes_on(chaos: WasmModule) -> None:
    with pytest.raises(GuestTimeout, match=r"time budget of 0\.5 s") as caught:
        chaos.entity("x").handle(CTX, "spin")
    assert caught.value.http_status == 500  # a guest fault over HTTP (docs/http.md)
    assert chaos.entity("y").handle(CTX, "chat", {"message": "after"}) == [
        ("Done", {"detail": "chatted"})
    ]


def test_a_fresh_instance_first_call_gets_the_start_up_budget(
    guests: dict[str, object],
) -> None:
    """The first call on an instance (the loader's schema call, or the constructor on a
    replacement) may fault in its memory image: it runs under the start-up budget."""
    limits = Limits(call_seconds=0.05, instantiate_seconds=3)
    chaos = load_module(guests["chaos"].wasm, limits=limits)  # type: ignore[attr-defined]
    fresh = chaos._spawn()
    assert fresh._budget() == limits.instantiate_ticks
    assert fresh._budget() == fresh._budget() == limits.call_ticks
    # And the short call budget still stops a runaway call on a used instance.
    with pytest.raises(GuestTimeout, match=r"time budget of 0\.05 s"):
        chaos.entity("x").handle(CTX, "spin")


def test_unbounded_allocation_hits_the_memory_cap(chaos: WasmModule) -> None:
    with pytest.raises(GuestOutOfMemory, match="out of memory"):
        chaos.entity("x").handle(CTX, "hog", {"megabytes": 200})
    assert chaos.entity("y").handle(CTX, "hog", {"megabytes": 2}) == [
        ("Done", {"detail": "kept 2 MiB"})
    ]


def test_files_are_out_of_reach(chaos: WasmModule, tmp_path: os.PathLike[str]) -> None:
    secret = os.path.join(tmp_path, "secret.txt")
    with open(secret, "w") as handle:
        handle.write("top secret")
    with pytest.raises(GuestTrap):  # WASI is stubbed: the filesystem call itself traps
        chaos.entity("x").handle(CTX, "read_file", {"path": secret})


def test_environment_variables_are_out_of_reach(
    chaos: WasmModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THALO_TEST_SECRET", "hunter2")
    events = chaos.entity("x").handle(CTX, "read_env", {"name": "THALO_TEST_SECRET"})
    assert events == [("Done", {"detail": "None of 0 variables"})]


def test_guest_logs_reach_the_host_logger_tagged(
    chaos: WasmModule, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="thalo.guest"):
        chaos.entity("x-1").handle(CTX, "chat", {"message": "hello"})
    lines = [(r.levelname, r.getMessage(), r.aggregate, r.entity) for r in caplog.records]  # type: ignore[attr-defined]
    assert lines == [
        ("INFO", "[Chaos x-1] hello", "Chaos", "x-1"),
        ("WARNING", "[Chaos x-1] hello (again)", "Chaos", "x-1"),
        ("INFO", "[Chaos x-1] hello (printed)", "Chaos", "x-1"),  # print() → log, not a trap
    ]


def test_answers_with_and_without_reason(chaos: WasmModule) -> None:
    entity = chaos.entity("x")
    with pytest.raises(GuestRejected, match="no way"):
        entity.handle(CTX, "refuse", {"reason": "no way"})
    with pytest.raises(GuestIgnored) as caught:
        entity.handle(CTX, "skip", {})
    assert caught.value.reason is None
    with pytest.raises(GuestIgnored) as caught:
        entity.handle(CTX, "skip", {"reason": "seen it"})
    assert caught.value.reason == "seen it"


def test_a_timeout_on_one_thread_does_not_stop_another(guests: dict[str, object]) -> None:
    from thalo.wasm import Limits

    chaos = load_module(guests["chaos"].wasm, limits=Limits(call_seconds=1.5))  # type: ignore[attr-defined]
    counter = load_module(guests["tally"].wasm)  # type: ignore[attr-defined]
    entity = counter.entity("c-1")
    errors: list[BaseException] = []

    def spin() -> None:
        try:
            chaos.entity("x").handle(CTX, "spin")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=spin)
    thread.start()
    done = 0
    while thread.is_alive():
        entity.apply(entity.handle({"streamName": "s"}, "increment", {"amount": 1}))
        done += 1
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], GuestTimeout)
    assert done > 10  # the counter kept running while the other guest spun
    assert json.loads(entity.snapshot())["count"] == done


def test_one_instance_is_never_entered_by_two_threads(guests: dict[str, object]) -> None:
    module = load_module(guests["tally"].wasm, max_instances=2)  # type: ignore[attr-defined]
    entities = [module.entity(f"c-{i}") for i in range(4)]
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(200):
                entity = entities[index % 4]
                entity.apply(entity.handle({"streamName": "s"}, "increment", {"amount": 1}))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(json.loads(e.snapshot())["count"] for e in entities) == 800
    assert module.instances <= 2


def test_the_clock_is_out_of_reach(chaos: WasmModule) -> None:
    with pytest.raises(GuestTrap):  # use ctx.time: replays must not depend on the clock
        chaos.entity("x").handle(CTX, "clock")


def test_a_call_can_get_its_own_budget(counter: WasmModule) -> None:
    batch = [("Incremented", {"amount": 1, "count": i + 1}) for i in range(20000)]
    with pytest.raises(GuestTimeout, match=r"time budget of 0\.005 s"):
        counter.entity("short").apply(batch, seconds=0.005)
    entity = counter.entity("long")
    entity.apply(batch, seconds=30)
    assert json.loads(entity.snapshot())["count"] == 20000


def test_the_lost_callback_can_rebuild_at_once(chaos: WasmModule) -> None:
    rebuilt: dict[str, object] = {}

    def rebuild(ids: list[str], error: Exception) -> None:
        for entity_id in ids:  # called outside the dead instance's lock: no deadlock
            rebuilt[entity_id] = chaos.entity(entity_id)

    chaos.on_instance_lost = rebuild
    doomed = chaos.entity("d")
    with pytest.raises(GuestTrap):
        doomed.handle(CTX, "crash", {"message": "again"})
    assert list(rebuilt) == ["d"]
    fresh = rebuilt["d"]
    assert fresh.handle(CTX, "chat", {"message": "back"}) == [("Done", {"detail": "chatted"})]  # type: ignore[attr-defined]


def test_the_ticker_parks_when_idle_and_wakes_for_the_next_call(counter: WasmModule) -> None:
    from thalo.wasm.engine import ticks

    entity = counter.entity("t")
    time.sleep(1.5)  # a second without calls: the ticker parks
    parked = ticks()
    time.sleep(0.3)
    assert ticks() == parked
    entity.handle({"streamName": "s"}, "reset")
    time.sleep(0.2)
    assert ticks() > parked


def test_a_long_lone_call_is_interrupted_after_the_ticker_would_park(
    guests: dict[str, object],
) -> None:
    from thalo.wasm import Limits

    chaos = load_module(guests["chaos"].wasm, limits=Limits(call_seconds=1.5))  # type: ignore[attr-defined]
    time.sleep(1.5)  # start from a parked ticker
    started = time.monotonic()
    with pytest.raises(GuestTimeout):
        chaos.entity("x").handle(CTX, "spin")
    assert 1.4 < time.monotonic() - started < 5
