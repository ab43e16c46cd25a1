"""Per-call cost of the wasm host on the test counter, against wasmtime-py's generic call.

Prints medians of --repeat runs:

- ``handle``: one trivial counter command end to end (dict ctx/payload in,
  ``[(type, data)]`` out), split into time inside the native call
  (``wasmtime_component_func_call``) and host-side marshalling (the rest);
  the baseline is the same call through wasmtime-py's ``Func.__call__`` with raw
  JSON strings (it re-reads the function type on every call).
- ``execute``: the same command decided and applied in one call, beside
  ``handle`` then ``apply`` of its event (two calls, as before contract 0.2.0).
- ``apply``: replay of a batch of --events events in one call, per event.
- load: a fresh process loading the module from the compile cache
  (deserialize + instantiate + schema), with and without a known sha256.
- memory: RSS per extra instance and per cached entity.
- TypeScript beside Python (``--lang both``, the default): examples/counter-ts built
  with componentize-js against the Python counter, on execute, batched apply per
  event, component size, cold compile time, cached load and memory. Target (issue
  12): the TypeScript guest's execute within 2× the Python guest's.

Targets (issue 4): handle ≤ 60 µs end to end, of which ≤ 25 µs host-side;
batched apply ≤ 5 µs per event; cached load + instantiate < 10 ms.

    python bench/wasm_calls.py [--calls 3000] [--events 2000] [--repeat 5] [--lang both]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTER = ROOT / "tests" / "wasm" / "guests" / "tally"
COUNTER_TS = ROOT / "examples" / "counter-ts"


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_handle(module: object, calls: int, repeat: int) -> tuple[list[float], list[float]]:
    """(end-to-end µs, native µs) per run, for Entity.handle with the native call timed."""
    from thalo.wasm import _calls

    entity = module.entity("bench-handle")  # type: ignore[attr-defined]
    native = [0.0]
    real = _calls._func_call

    def timed(*args: object) -> object:
        started = time.perf_counter()
        result = real(*args)
        native[0] += time.perf_counter() - started
        return result

    ctx = {"streamName": "counter-bench"}
    payload = {"amount": 1}
    for _ in range(200):
        entity.handle(ctx, "increment", payload)
    totals, natives = [], []
    for _ in range(repeat):
        _calls._func_call = timed
        native[0] = 0.0
        started = time.perf_counter()
        for _ in range(calls):
            entity.handle(ctx, "increment", payload)
        elapsed = time.perf_counter() - started
        _calls._func_call = real
        totals.append(elapsed / calls * 1e6)
        natives.append(native[0] / calls * 1e6)
    # The timing wrapper itself costs a Python call and two clock reads.
    return totals, natives


def bench_untimed(module: object, calls: int, repeat: int, how: str) -> list[float]:
    """µs per counter command: ``handle`` alone, ``execute`` (decide and apply in one
    call), or ``handle+apply`` (the same in two calls, as before contract 0.2.0)."""
    entity = module.entity(f"bench-{how}")  # type: ignore[attr-defined]
    ctx = {"streamName": "counter-bench"}
    payload = {"amount": 1}
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        if how == "handle":
            for _ in range(calls):
                entity.handle(ctx, "increment", payload)
        elif how == "execute":
            for _ in range(calls):
                entity.execute(ctx, "increment", payload)
        else:
            for _ in range(calls):
                entity.apply(entity.handle(ctx, "increment", payload))
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return samples


def bench_baseline(module: object, calls: int, repeat: int) -> list[float]:
    """The same handle through wasmtime-py's generic Func.__call__ (strings in, Variant out)."""
    entity = module.entity("bench-baseline")  # type: ignore[attr-defined]
    instance = entity._instance
    func = instance.funcs["[method]entity.handle"]
    store = instance.store
    resource = entity._resource
    ctx = json.dumps({"streamName": "counter-bench"})
    command = '{"name":"increment","payload":{"amount":1}}'
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            store.set_epoch_deadline(400)
            json.loads(func(store, resource, ctx, command))  # ok → the string itself
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return samples


def bench_apply(module: object, events: int, repeat: int) -> list[float]:
    batch = json.dumps(
        [
            {"type": "Incremented", "data": {"amount": 1, "count": i + 1, "sequence": None}}
            for i in range(events)
        ]
    )
    samples = []
    for run in range(repeat):
        entity = module.entity(f"bench-apply-{run}")  # type: ignore[attr-defined]
        started = time.perf_counter()
        entity.apply(batch)
        samples.append((time.perf_counter() - started) / events * 1e6)
        entity.close()
    return samples


LOAD_PROBE = """
import hashlib, json, sys, time
from pathlib import Path
data = Path(sys.argv[1]).read_bytes()
digest = hashlib.sha256(data).hexdigest() if sys.argv[2] == "known" else None
import thalo.wasm.module, wasmtime  # imports are not part of a load
from thalo.wasm.engine import engine
engine()
started = time.perf_counter()
module = thalo.wasm.module.load_module(data, sha256=digest)
print(json.dumps({"seconds": time.perf_counter() - started, "cached": module.from_cache}))
"""


def bench_load(path: Path, repeat: int, digest: str) -> list[float]:
    samples = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_PROBE, str(path), digest],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout)
        if not result["cached"]:
            raise SystemExit("the compile cache was cold: run the bench again")
        samples.append(result["seconds"] * 1e3)
    return samples


def bench_memory(wasm: bytes) -> tuple[float, float]:
    """(MiB RSS per extra instance, KiB RSS per cached entity), on a fresh module."""
    from thalo.wasm import load_module

    module = load_module(wasm, max_instances=8)
    count = 5000
    entities = []
    before = rss_bytes()
    for i in range(count):  # one thread: they all go to the first instance
        entity = module.entity(f"mem-{i}")
        entity.apply([("Incremented", {"amount": i, "count": i, "sequence": i})])
        entities.append(entity)
    per_entity = (rss_bytes() - before) / count / 2**10
    extra = 4
    before = rss_bytes()
    for _ in range(extra):
        instance = module._spawn()
        instance.invoke(instance.schema_func, None)
    per_instance = (rss_bytes() - before) / extra / 2**20
    module.close()
    return per_instance, per_entity


def bench_compile(wasm: bytes) -> float:
    """Seconds to compile the component into an empty compile cache (a first load)."""
    import tempfile

    from thalo.wasm import load_module
    from thalo.wasm.cache import CompileCache

    with tempfile.TemporaryDirectory(prefix="thalo-bench-compile-") as cold:
        started = time.perf_counter()
        load_module(wasm, cache=CompileCache(Path(cold)), max_instances=1).close()
        return time.perf_counter() - started


def guest_figures(project: Path, args: argparse.Namespace) -> dict[str, object]:
    """The figures the language comparison prints, for one guest project."""
    from thalo.cli.build import build_project
    from thalo.wasm import load_module

    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{project.name}.wasm"
    built = build_project(project, out)
    wasm = built.path.read_bytes()
    module = load_module(wasm, max_instances=1)
    figures: dict[str, object] = {
        "execute": bench_untimed(module, args.calls, args.repeat, "execute"),
        "handle": bench_untimed(module, args.calls, args.repeat, "handle"),
        "apply": bench_apply(module, args.events, args.repeat),
        "size": len(wasm) / 2**20,
        "compile": bench_compile(wasm),
        "load": bench_load(built.path, args.repeat, "known"),
    }
    module.close()
    figures["instance"], figures["entity"] = memory_in_fresh_process(built.path)
    return figures


MEMORY_PROBE = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from wasm_calls import bench_memory
print(json.dumps(bench_memory(Path(sys.argv[1]).read_bytes())))
"""


def memory_in_fresh_process(path: Path) -> tuple[float, float]:
    """bench_memory in a process of its own: memory freed by earlier runs skews RSS here."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    per_instance, per_entity = json.loads(out.stdout.strip().splitlines()[-1])
    return per_instance, per_entity


def compare_languages(args: argparse.Namespace) -> None:
    """TypeScript (componentize-js) beside Python (componentize-py): the same counter."""
    python, typescript = guest_figures(COUNTER, args), guest_figures(COUNTER_TS, args)
    print(f"\nthe counter in Python and in TypeScript, {args.repeat} runs (median / best)")
    print(f"{'':<26}{'Python':>18} {'TypeScript':>18} {'TS/Py':>7}")

    def line(label: str, key: str, unit: str) -> float:
        py, ts = python[key], typescript[key]
        if isinstance(py, list) and isinstance(ts, list):
            a, b = median(py), median(ts)
            shown = f"{a:8.1f} /{min(py):7.1f}", f"{b:8.1f} /{min(ts):7.1f}"
        else:
            a, b = float(py), float(ts)  # type: ignore[arg-type]
            shown = f"{a:17.2f}", f"{b:17.2f}"
        print(f"{label:<26}{shown[0]:>18} {shown[1]:>18} {b / a:6.2f}×  {unit}")
        return b / a

    ratio = line("execute", "execute", "µs")
    line("handle", "handle", "µs")
    line(f"apply, batch of {args.events}", "apply", "µs/event")
    line("component size", "size", "MiB")
    line("compile (cold cache)", "compile", "s")
    line("cached load+instantiate", "load", "ms")
    line("memory per instance", "instance", "MiB RSS")
    line("memory per cached entity", "entity", "KiB RSS")
    verdict = "ok" if ratio <= 2 else "MISSED"
    print(f"target: TypeScript execute ≤ 2× Python's: {ratio:.2f}× {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--lang",
        choices=["python", "typescript", "both"],
        default="both",
        help="python: the host figures; typescript: the language comparison; both",
    )
    args = parser.parse_args()
    if args.lang != "typescript":
        host_figures(args)
    if args.lang != "python":
        compare_languages(args)


def host_figures(args: argparse.Namespace) -> None:
    """The host's per-call figures on the Python counter (issue 4's targets)."""

    from thalo.cli.build import build_project
    from thalo.wasm import load_module

    built = build_project(COUNTER, Path(os.environ.get("TMPDIR", "/tmp")) / "bench-counter.wasm")
    wasm = built.path.read_bytes()
    module = load_module(wasm, max_instances=1)

    totals, natives = bench_handle(module, args.calls, args.repeat)
    untimed = bench_untimed(module, args.calls, args.repeat, "handle")
    executes = bench_untimed(module, args.calls, args.repeat, "execute")
    two_calls = bench_untimed(module, args.calls, args.repeat, "handle+apply")
    baseline = bench_baseline(module, args.calls, args.repeat)
    apply_us = bench_apply(module, args.events, args.repeat)
    load_known = bench_load(built.path, args.repeat, "known")
    load_hashing = bench_load(built.path, args.repeat, "hash")
    per_instance, per_entity = bench_memory(wasm)

    e2e, native = median(totals), median(natives)
    host_runs = [t - n for t, n in zip(totals, natives, strict=True)]
    size = len(wasm) / 2**20
    print(f"wasm host on {module.name} ({size:.1f} MiB component), {args.repeat} runs")
    print(f"{'':<28}{'median':>9} {'best':>9} {'unit':<9} {'target':<12}")
    row("handle end to end", untimed, "µs", 60)
    row("  inside the native call", natives, "µs")
    row("  host-side marshalling", host_runs, "µs", 25)
    row("  baseline Func.__call__", baseline, "µs")
    print(
        f"  (fast path is {median(baseline) / median(untimed):.2f}× the baseline; "
        f"timed run {e2e:.1f} µs of which native {native:.1f})"
    )
    row("execute end to end", executes, "µs")
    row("  handle, then apply", two_calls, "µs")
    print(f"  (one call is {median(executes) / median(two_calls):.2f}× the two)")
    row(f"apply, batch of {args.events}", apply_us, "µs/event", 5)
    row("cached load+instantiate", load_known, "ms", 10)
    row("  hashing the bytes too", load_hashing, "ms")
    print(f"{'memory per instance':<28}{per_instance:9.2f} {'':>9} MiB RSS")
    print(f"{'memory per cached entity':<28}{per_entity:9.2f} {'':>9} KiB RSS")


def row(label: str, samples: list[float], unit: str, target: float | None = None) -> None:
    value = median(samples)
    verdict = ""
    if target is not None:
        verdict = f"≤ {target:<9g} {'ok' if value <= target else 'MISSED'}"
    print(f"{label:<28}{value:9.2f} {min(samples):9.2f} {unit:<9} {verdict}")


if __name__ == "__main__":
    main()
