"""Commands/s over HTTP (`thalo serve`) beside the in-process `Runtime`, measured in the same run.

What it runs: the bank_account example is built and published, then the real
``thalo serve --no-runner`` starts as a subprocess on a free 127.0.0.1 port
(SQLite by default; with ``--postgres-url`` also on Message DB). The workload is
bench/commands.py's: open ``--accounts`` accounts, then ``--operations``
deposits/withdrawals spread uniformly over them (fresh entity ids for every
measurement), sent as ``POST /aggregates/BankAccount/{id}/commands/{command}``
by 1, 16 and 64 concurrent keep-alive clients.

The load generator is a separate process (this file run with ``--_load``): a
lean asyncio HTTP/1.1 client on raw ``asyncio.open_connection`` streams that
pre-encodes every request, connects before the clock starts, and parses only
the status line and Content-Length. Its ceiling is printed beside each figure:
the same client against ``GET /healthz`` at the same concurrency (a route that
does no work, so that figure bounds what client + uvicorn + Starlette can carry),
and the client's own CPU use during the command run. ``--load-procs 2`` splits
the clients over two load processes; one is the default: the client spends
~0.1 ms of CPU per request (10-16% of one core at these rates, printed), so on
a 2-core machine a second process would only take CPU from the server.

The in-process baseline is the same workload, the same concurrency, through
``Runtime.execute`` (which, like the HTTP route, reads the recorded events back)
on a separate store file (on Message DB: the same database, other entity ids),
in the same process as this driver while the server sits idle. ``record`` (no
read back) is shown too.

How to read it: every figure is the median of ``--repeat`` rounds; in each
round every measurement runs once, in turn, so drift in the machine's load
hits all of them alike. ``ratio`` is HTTP cmd/s / in-process ``execute``
cmd/s at the same concurrency; the target (the issue's) is ≥ 0.5 with 16
clients on SQLite. ``healthz`` should be far above HTTP cmd/s and the load
generator's CPU well under one core, else the client is the bottleneck. The
CPU table shows the server's CPU time per command (from /proc) against the
in-process one: the difference is what HTTP costs per command.

``--profile`` samples the server with py-spy (``pip install py-spy``) under
the 16-client load for ``--profile-seconds`` and prints where its time goes:
by layer (uvicorn/httptools, Starlette, thalo.server, runtime, guest, store,
logging, metrics, event loop), and the top functions.

    python bench/http.py [--postgres-url URL] [--repeat 3] [--profile] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thalo.runtime import Runtime

# Run as a script, this file's folder comes first on sys.path, and this file's name would
# shadow the standard library's ``http`` package (urllib, uvicorn and psycopg import it):
# drop that entry before anything imports it. Third-party modules are imported lazily below.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

ROOT = HERE.parent
AGGREGATE = "BankAccount"
HOST = "127.0.0.1"
CACHE_SIZE = 10_000  # thalo serve's defaults, used for the in-process Runtime too
SNAPSHOT_EVERY = 100
Job = tuple[str, str, dict[str, int]]


# --- the workload (as bench/commands.py) ----------------------------------------------


def workload(accounts: int, operations: int, seed: int = 7) -> list[tuple[int, str, int]]:
    """(account index, command, amount): deposits, and withdrawals small enough to succeed."""
    rng = random.Random(seed)
    return [
        (
            rng.randrange(accounts),
            "deposit_funds" if rng.random() < 0.6 else "withdraw_funds",
            rng.randint(1, 5),
        )
        for _ in range(operations)
    ]


def jobs(
    prefix: str, accounts: int, operations: int, part: int = 0, parts: int = 1
) -> tuple[list[Job], list[Job]]:
    """The opens, then the operations, of the accounts ``i % parts == part``.

    Opens run first (all callers), then the operations: an operation can never
    overtake its account's open. Several load processes take disjoint accounts.
    """
    opens: list[Job] = [
        (f"{prefix}-{i}", "open_account", {"initial_balance": 1000})
        for i in range(accounts)
        if i % parts == part
    ]
    rest: list[Job] = [
        (f"{prefix}-{i}", command, {"amount": amount})
        for i, command, amount in workload(accounts, operations)
        if i % parts == part
    ]
    return opens, rest


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Run:
    """One measurement: how many calls, over how long, their latencies (s), CPU used (s)."""

    count: int
    elapsed: float
    latencies: list[float]
    cpu: float  # the load generator's CPU (HTTP runs) or this process's (in-process runs)
    server_cpu: float | None = None
    server_sys: float | None = None  # of which in the kernel (sockets, fsync, wake-ups)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed

    @property
    def p50(self) -> float:
        return _percentile(self.latencies, 0.5) * 1e3

    @property
    def p99(self) -> float:
        return _percentile(self.latencies, 0.99) * 1e3


# --- the load generator (its own process) ------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: write a pre-encoded request, read one response."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)  # small, and one in flight: no need to drain
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            at = head.lower().find(b"\r\ncontent-length:")
            if at < 0:
                raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
        end = head.index(b"\r\n", at + 17)
        size = int(head[at + 17 : end])
        body = await self.reader.readexactly(size) if size else b""
        return status, body


def _request(job: Job, port: int) -> bytes:
    entity, command, payload = job
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"POST /aggregates/{AGGREGATE}/{entity}/commands/{command} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _drive(
    connections: list[Connection],
    requests: list[bytes],
    deadline: float | None,
    latencies: list[float],
    errors: list[str],
) -> None:
    """Send ``requests`` over the connections, each as soon as its connection is free."""
    queue = iter(requests)
    clock = time.perf_counter

    async def client(connection: Connection) -> None:
        for request in queue:
            started = clock()
            status, body = await connection.call(request)
            ended = clock()
            latencies.append(ended - started)
            if status != 200:
                errors.append(f"{status} {body[:300].decode(errors='replace')}")
            if deadline is not None and ended >= deadline:
                return

    await asyncio.gather(*(client(c) for c in connections))


async def load_main(spec: dict[str, Any]) -> None:
    """``--_load SPEC``: connect, print ``ready``, wait for ``go`` on stdin, run, print JSON."""
    port: int = spec["port"]
    connections = []
    for _ in range(spec["clients"]):
        reader, writer = await asyncio.open_connection(HOST, port)
        connections.append(Connection(reader, writer))
    if spec["mode"] == "healthz":
        request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
        phases = [[request] * spec["count"]]
    else:
        opens, rest = jobs(
            spec["prefix"], spec["accounts"], spec["operations"], spec["part"], spec["parts"]
        )
        phases = [[_request(j, port) for j in opens], [_request(j, port) for j in rest]]
    latencies: list[float] = []
    errors: list[str] = []
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    cpu = time.process_time()
    started = time.monotonic()  # CLOCK_MONOTONIC: comparable across load processes
    deadline = None if spec.get("duration") is None else time.perf_counter() + spec["duration"]
    for phase in phases:
        await _drive(connections, phase, deadline, latencies, errors)
    ended = time.monotonic()
    cpu = time.process_time() - cpu
    for connection in connections:
        connection.writer.close()
    result = {
        "count": len(latencies),
        "started": started,
        "ended": ended,
        "cpu": cpu,
        "latencies": latencies,
        "errors": errors[:5],
        "error_count": len(errors),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# --- the server under test -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(user + system, system) CPU seconds of process ``pid`` (Linux /proc), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick


class Server:
    """``thalo serve --no-runner`` on a free loopback port, its log in a file."""

    def __init__(self, store_url: str, workdir: Path) -> None:
        self.port = _free_port()
        self.log = workdir / f"server-{self.port}.log"
        command = [sys.executable, "-m", "thalo.cli.main", "--store", store_url, "serve"]
        command += ["--host", HOST, "--port", str(self.port), "--no-runner"]
        command += ["--cache-size", str(CACHE_SIZE), "--snapshot-every", str(SNAPSHOT_EVERY)]
        self.command = command
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"thalo serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"thalo serve not ready within {timeout:g} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def http_run(
    server: Server,
    spec: dict[str, Any],
    clients: int,
    procs: int,
    during: Callable[[], Awaitable[None]] | None = None,
) -> Run:
    """Run one load (``spec``) with ``clients`` connections over ``procs`` load processes."""
    parts = max(1, min(procs, clients))
    children = []
    for part in range(parts):
        share = clients // parts + (1 if part < clients % parts else 0)
        child_spec = {**spec, "port": server.port, "clients": share, "part": part, "parts": parts}
        if spec["mode"] == "healthz":
            child_spec["count"] = spec["count"] // parts
        children.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--_load",
                json.dumps(child_spec),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                limit=2**27,
            )
        )
    try:
        for child in children:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"the load process did not start: {line!r}")
        server_cpu = _cpu_seconds(server.pid)
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        extra = asyncio.ensure_future(during()) if during is not None else None
        results = []
        for child in children:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 600)
            if not line:
                raise RuntimeError("a load process ended without a result")
            results.append(json.loads(line))
        server_after = _cpu_seconds(server.pid)
        if extra is not None:
            await extra
    finally:
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(child.wait(), 10)
            if child.returncode is None:
                child.kill()
                await child.wait()
    errors = [e for r in results for e in r["errors"]]
    error_count = sum(r["error_count"] for r in results)
    if error_count:
        raise RuntimeError(f"{error_count} requests failed, e.g. {errors[:3]}")
    return Run(
        count=sum(r["count"] for r in results),
        elapsed=max(r["ended"] for r in results) - min(r["started"] for r in results),
        latencies=[x for r in results for x in r["latencies"]],
        cpu=sum(r["cpu"] for r in results),
        server_cpu=server_after[0] - server_cpu[0] if server_cpu and server_after else None,
        server_sys=server_after[1] - server_cpu[1] if server_cpu and server_after else None,
    )


# --- the in-process baseline -----------------------------------------------------------------


async def inprocess_run(
    runtime: Runtime, prefix: str, accounts: int, operations: int, callers: int, method: str
) -> Run:
    """The same workload through ``Runtime.execute`` (or ``record``) with ``callers`` tasks."""
    opens, rest = jobs(prefix, accounts, operations)
    call = runtime.execute if method == "execute" else runtime.record
    latencies: list[float] = []
    clock = time.perf_counter

    async def caller(queue: Any) -> None:
        for entity, command, payload in queue:
            started = clock()
            await call(AGGREGATE, entity, command, payload)
            latencies.append(clock() - started)

    cpu = time.process_time()
    started = clock()
    for part in (opens, rest):
        queue = iter(part)
        await asyncio.gather(*(caller(queue) for _ in range(callers)))
    elapsed = clock() - started
    return Run(len(latencies), elapsed, latencies, time.process_time() - cpu)


# --- profile -----------------------------------------------------------------------------------

LAYERS: list[tuple[str, str]] = [
    ("uvicorn/", "uvicorn + httptools (HTTP parsing, protocol)"),
    ("httptools", "uvicorn + httptools (HTTP parsing, protocol)"),
    ("h11", "uvicorn + httptools (HTTP parsing, protocol)"),
    ("starlette/", "Starlette (routing, Request, Response)"),
    ("thalo/server/metrics", "metrics (prometheus_client)"),
    ("prometheus_client/", "metrics (prometheus_client)"),
    ("logging/", "logging (one line per request)"),
    ("thalo/server/", "thalo.server (app code)"),
    ("thalo/wasm/", "guest (wasmtime calls)"),
    ("wasmtime/", "guest (wasmtime calls)"),
    ("thalo/esdl/", "payload/event validation (thalo.esdl)"),
    ("thalo/runtime/", "runtime (thalo.runtime)"),
    ("thalo/registry/", "runtime (thalo.runtime)"),
    ("thalo/store/", "store (thalo.store + driver)"),
    ("sqlite3/", "store (thalo.store + driver)"),
    ("psycopg", "store (thalo.store + driver)"),
    ("thalo/core/", "messages (thalo.core: to_dict, names)"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
]


def _layer(frames: list[str]) -> str:
    """The innermost frame's layer; stdlib frames (json, uuid, …) count for their caller."""
    for frame in reversed(frames):
        for marker, layer in LAYERS:
            if marker in frame:
                return layer
    return "other"


IDLE = ("EpollSelector.select", "KqueueSelector.select", "SelectSelector.select")
ROOT_FRAMES = ("click/", "runpy", "thalo/cli/", "uvicorn/server.py", "uvicorn/_compat.py",
               "uvicorn/main.py", "asyncio/", "selectors.py", "threading.py")  # fmt: skip


def summarize_profile(raw: str, commands_per_second: float, top: int = 15) -> None:
    """Print py-spy's raw samples (``--threads --idle``): the event-loop thread by layer
    (share of its wall time and µs per command) and by function, and the other threads.

    One process serves every request on one event-loop thread, and that thread is
    what saturates: its busy share times 1/(cmd/s) is the loop time each command costs.
    """
    threads: dict[str, Counter[str]] = defaultdict(Counter)  # thread -> leaf frame -> samples
    loop_total = 0
    loop_idle = 0
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        root, *frames = stack.split(";")
        name = root.split(": ", 1)[-1]
        threads[name][frames[-1] if frames else "?"] += count
        if name != "MainThread":
            continue
        loop_total += count
        if not frames or any(frames[-1].startswith(f) for f in IDLE):
            loop_idle += count
            continue
        layers[_layer(frames)] += count
        own[frames[-1]] += count
        for frame in set(frames):
            if not any(marker in frame for marker in ROOT_FRAMES):
                inclusive[frame] += count
    if not loop_total:
        print("  (no samples of the event-loop thread)")
        return
    busy = loop_total - loop_idle
    per_cmd = 1e6 / commands_per_second  # µs of wall time per command
    print(
        f"  event-loop thread: busy {100 * busy / loop_total:.0f}% of {loop_total} samples "
        f"(idle = waiting in select); {per_cmd:.0f} µs of wall time per command"
    )
    print("  its busy time by layer (innermost known frame; stdlib frames count for their caller):")
    print("      % busy   µs/cmd  layer")
    for layer, count in layers.most_common():
        share = count / loop_total
        print(f"     {100 * count / busy:5.1f}%  {share * per_cmd:6.0f}  {layer}")
    print(f"  top {top} functions by own time (% of the loop thread's busy samples):")
    for frame, count in own.most_common(top):
        print(f"     {100 * count / busy:5.1f}%  {frame}")
    print(f"  top {top} functions by total time (with callees, below uvicorn's loop):")
    for frame, count in inclusive.most_common(top):
        print(f"     {100 * count / busy:5.1f}%  {frame}")
    print("  other threads (their most sampled innermost frames; waits included):")
    for name, leaves in sorted(threads.items(), key=lambda t: -t[1].total()):
        if name == "MainThread":
            continue
        total = leaves.total()
        common = ", ".join(f"{100 * n / total:.0f}% {f}" for f, n in leaves.most_common(2))
        print(f"     {name}: {total} samples: {common}")


async def profile_server(server: Server, args: argparse.Namespace, workdir: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("\n  --profile: py-spy is not installed (pip install py-spy); skipped")
        return
    seconds = args.profile_seconds
    out = workdir / f"profile-{server.port}.txt"
    spec = {
        "mode": "commands",
        "prefix": f"p{uuid.uuid4().hex[:8]}",
        "accounts": args.accounts,
        "operations": args.operations * 40,
        "duration": seconds + 3.0,
    }
    spied: list[int] = []

    async def record() -> None:
        await asyncio.sleep(1.0)  # past the opens, into the steady state
        process = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(server.pid), "--format", "raw", "--threads", "--idle",
            "--rate", "100", "--duration", str(max(1, round(seconds))), "--output", str(out),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        _, err = await process.communicate()
        spied.append(process.returncode or 0)
        if process.returncode:
            print(f"  py-spy failed: {err.decode(errors='replace')[-500:]}")

    print(f"\n  profile: py-spy on thalo serve, 16 clients, {seconds:g} s of steady load")
    run = await http_run(server, spec, 16, args.load_procs, during=record)
    per_cmd = run.server_cpu / run.count if run.server_cpu else None
    note = f", server CPU {per_cmd * 1e6:.0f} µs/cmd (all threads)" if per_cmd else ""
    print(f"  under the profiler: {run.rate:,.0f} cmd/s, p50 {run.p50:.2f} ms{note}")
    if spied and spied[0] == 0 and out.exists():
        summarize_profile(out.read_text(), run.rate)
        print(f"  raw samples: {out} (flamegraph.pl or speedscope can draw them)")


# --- the driver ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _row(cells: list[str], widths: list[int]) -> str:
    return "  " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))


async def _publish(url: str, schema_text: str, wasm: bytes) -> None:
    from thalo.errors import VersionNotGreater
    from thalo.registry import Registry
    from thalo.store import open_store

    async with open_store(url) as store:
        # VersionNotGreater: a previous run published this version (a rebuild may differ)
        with contextlib.suppress(VersionNotGreater):
            await Registry(store).publish(schema_text, wasm)


async def bench_backend(
    name: str,
    http_url: str,
    inprocess_url: str,
    args: argparse.Namespace,
    schema_text: str,
    wasm: bytes,
    workdir: Path,
) -> dict[int, float]:
    from thalo.runtime import Runtime
    from thalo.store import open_store

    total = args.accounts + args.operations
    print(
        f"\n{name}: {args.accounts} accounts opened, then {args.operations} deposits/"
        f"withdrawals ({total} commands per measurement), median of {args.repeat}"
    )
    for url in dict.fromkeys((http_url, inprocess_url)):
        await _publish(url, schema_text, wasm)
    server = Server(http_url, workdir)
    try:
        await asyncio.to_thread(server.wait_ready)
        print(f"  server: {' '.join(server.command[1:])} (pid {server.pid})")
        print(
            f"  load generator: {args.load_procs} process(es), asyncio + raw streams, "
            "keep-alive, requests pre-encoded"
        )
        async with (
            open_store(inprocess_url) as store,
            Runtime(store, cache_size=CACHE_SIZE, snapshot_every=SNAPSHOT_EVERY) as runtime,
        ):

            def spec(accounts: int, operations: int) -> dict[str, Any]:
                prefix = f"h{uuid.uuid4().hex[:8]}"
                return {"mode": "commands", "prefix": prefix, "accounts": accounts,
                        "operations": operations}  # fmt: skip

            # warm-up: both sides, untimed (module load, caches, connections, JIT of paths)
            warm_accounts, warm_ops = max(10, args.accounts // 4), max(100, args.operations // 6)
            for clients in (1, 16):
                await http_run(server, spec(warm_accounts, warm_ops), clients, args.load_procs)
                await inprocess_run(
                    runtime, f"w{uuid.uuid4().hex[:8]}", warm_accounts, warm_ops, clients, "execute"
                )
            await http_run(server, {"mode": "healthz", "count": 2000}, 16, args.load_procs)

            runs: dict[tuple[str, int], list[Run]] = defaultdict(list)
            for round_ in range(args.repeat):
                for clients in args.clients:
                    runs["http", clients].append(
                        await http_run(
                            server, spec(args.accounts, args.operations), clients, args.load_procs
                        )
                    )
                    runs["healthz", clients].append(
                        await http_run(
                            server, {"mode": "healthz", "count": total}, clients, args.load_procs
                        )
                    )
                    for method in ("execute", "record"):
                        runs[method, clients].append(
                            await inprocess_run(
                                runtime,
                                f"{method[0]}{uuid.uuid4().hex[:8]}",
                                args.accounts,
                                args.operations,
                                clients,
                                method,
                            )
                        )
                    http = runs["http", clients][-1]
                    inproc = runs["execute", clients][-1]
                    print(
                        f"  round {round_ + 1}, {clients:>2} clients: HTTP {http.rate:7,.0f} "
                        f"cmd/s, in-process {inproc.rate:7,.0f} cmd/s, "
                        f"healthz {runs['healthz', clients][-1].rate:7,.0f} req/s",
                        flush=True,
                    )
            ratios = _report(runs, args.clients)
            if args.profile:
                await profile_server(server, args, workdir)
    finally:
        server.stop()
    return ratios


def _report(runs: dict[tuple[str, int], list[Run]], clients_list: list[int]) -> dict[int, float]:
    def med(kind: str, clients: int, figure: Callable[[Run], float | None]) -> float:
        values = [v for r in runs[kind, clients] if (v := figure(r)) is not None]
        return _median(values)

    heads = ["clients", "HTTP cmd/s", "p50 ms", "p99 ms", "in-proc execute cmd/s", "p50 ms",
             "p99 ms", "ratio", "record cmd/s", "healthz req/s"]  # fmt: skip
    widths = [len(h) for h in heads]
    print()
    print(_row(heads, widths))
    print("  " + "-+-".join("-" * w for w in widths))
    ratios: dict[int, float] = {}
    for clients in clients_list:
        http = med("http", clients, lambda r: r.rate)
        inproc = med("execute", clients, lambda r: r.rate)
        ratios[clients] = http / inproc
        cells = [
            str(clients),
            f"{http:,.0f}",
            f"{med('http', clients, lambda r: r.p50):.2f}",
            f"{med('http', clients, lambda r: r.p99):.2f}",
            f"{inproc:,.0f}",
            f"{med('execute', clients, lambda r: r.p50):.2f}",
            f"{med('execute', clients, lambda r: r.p99):.2f}",
            f"{ratios[clients]:.2f}",
            f"{med('record', clients, lambda r: r.rate):,.0f}",
            f"{med('healthz', clients, lambda r: r.rate):,.0f}",
        ]
        print(_row(cells, widths))

    heads = ["clients", "server CPU µs/cmd", "of which kernel", "in-proc CPU µs/cmd",
             "HTTP extra µs/cmd", "load-gen CPU µs/req", "load-gen % of a core",
             "healthz/HTTP"]  # fmt: skip
    widths = [len(h) for h in heads]
    print()
    print(_row(heads, widths))
    print("  " + "-+-".join("-" * w for w in widths))
    for clients in clients_list:
        server = med("http", clients, lambda r: r.server_cpu / r.count if r.server_cpu else None)
        kernel = med("http", clients, lambda r: r.server_sys / r.count if r.server_sys else None)
        inproc = med("execute", clients, lambda r: r.cpu / r.count)
        load = med("http", clients, lambda r: r.cpu / r.count)
        busy = med("http", clients, lambda r: r.cpu / r.elapsed)
        ceiling = med("healthz", clients, lambda r: r.rate) / med("http", clients, lambda r: r.rate)
        cells = [
            str(clients),
            f"{server * 1e6:,.0f}",
            f"{kernel * 1e6:,.0f}",
            f"{inproc * 1e6:,.0f}",
            f"{(server - inproc) * 1e6:,.0f}",
            f"{load * 1e6:,.0f}",
            f"{100 * busy:.0f}%",
            f"{ceiling:.1f}x",
        ]
        print(_row(cells, widths))
    return ratios


async def main(args: argparse.Namespace) -> None:
    from thalo.cli.build import build_project

    workdir = Path(tempfile.mkdtemp(prefix="thalo-bench-http-"))
    project = ROOT / "examples" / "bank_account"
    built = build_project(project, workdir / "bank_account.wasm")
    schema_text = (project / "bank_account.esdl").read_text()
    wasm = built.path.read_bytes()
    print(
        f"thalo serve over HTTP vs in-process Runtime; clients {args.clients}, "
        f"{os.cpu_count()} CPUs, work dir {workdir}"
    )
    if args.only in (None, "sqlite"):
        ratios = await bench_backend(
            "SQLite (WAL)",
            f"sqlite:///{workdir / 'http.db'}",
            f"sqlite:///{workdir / 'inprocess.db'}",
            args,
            schema_text,
            wasm,
            workdir,
        )
        if 16 in ratios:
            verdict = "meets" if ratios[16] >= 0.5 else "MISSES"
            print(f"\n  SQLite, 16 clients: HTTP/in-process {ratios[16]:.2f} — {verdict} ≥ 0.5")
    if args.only in (None, "messagedb"):
        if not args.postgres_url:
            print("\nMessage DB: skipped (give --postgres-url or set THALO_BENCH_POSTGRES_URL)")
            return
        from thalo.store.installer import install_message_db

        report = await install_message_db(args.postgres_url)
        if not report.already_installed:
            print(f"\nMessage DB {report.version} installed into {args.postgres_url}")
        ratios = await bench_backend(
            "Message DB (PostgreSQL)",
            args.postgres_url,
            args.postgres_url,
            args,
            schema_text,
            wasm,
            workdir,
        )
        if 16 in ratios:
            print(f"\n  Message DB, 16 clients: HTTP/in-process {ratios[16]:.2f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--operations", type=int, default=3000)
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 16, 64],
        help="concurrent keep-alive clients, comma-separated (default 1,16,64)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--load-procs",
        type=int,
        default=1,
        help="load-generator processes the clients are spread over (default 1)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("THALO_BENCH_POSTGRES_URL"),
        help="also run on Message DB in this database (installed if missing)",
    )
    parser.add_argument("--only", choices=["sqlite", "messagedb"])
    parser.add_argument("--profile", action="store_true", help="py-spy the server, 16 clients")
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer commands, one round")
    parser.add_argument("--_load", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.operations, args.repeat = 50, 600, 1
        args.profile_seconds = min(args.profile_seconds, 4.0)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments._load:
        asyncio.run(load_main(json.loads(arguments._load)))
    else:
        asyncio.run(main(arguments))
