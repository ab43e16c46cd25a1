"""Server-Sent Events: live following, resuming by Last-Event-ID, and ending at shutdown."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import unique
from serving import Served, post, serving

pytestmark = pytest.mark.wasm
SSE = {"Accept": "text/event-stream"}


def frames(lines: Iterator[str]) -> Iterator[tuple[str | None, str | None, dict[str, Any]]]:
    """(id, event, data) per SSE frame; comment lines are skipped."""
    event_id: str | None = None
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event_id, event, json.loads("\n".join(data))
            event_id, event, data = None, None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = value
            elif field == "event":
                event = value
            elif field == "data":
                data.append(value)


def read_frames(
    served: Served, path: str, count: int, headers: dict[str, str] | None = None
) -> list[tuple[str | None, str | None, dict[str, Any]]]:
    """The first ``count`` frames of an event stream; then the connection is dropped."""
    got: list[tuple[str | None, str | None, dict[str, Any]]] = []
    with (
        httpx.Client(base_url=served.url, timeout=httpx.Timeout(30, read=30)) as http,
        http.stream("GET", path, headers={**SSE, **(headers or {})}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in frames(response.iter_lines()):
            got.append(frame)
            if len(got) == count:
                break
    return got


def in_background(work: Any) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_stream_follows_live_and_resumes_after_a_dropped_connection(api: Served) -> None:
    entity = unique("sse")
    stream = f"counter-{entity}"
    http = httpx.Client(base_url=api.url, timeout=30)

    def produce(first: int, last: int) -> None:
        time.sleep(0.3)  # after the subscriber is connected
        for amount in range(first, last + 1):
            post(http, "Counter", entity, "increment", {"amount": amount})

    writer = in_background(lambda: produce(1, 3))
    first = read_frames(api, f"/streams/{stream}", 3)
    writer.join()
    assert [f[0] for f in first] == ["0", "1", "2"]  # the SSE id is the stream position
    assert [f[1] for f in first] == ["message"] * 3
    assert [f[2]["data"]["amount"] for f in first] == [1, 2, 3]
    # while nobody listens, more happens; a reconnect with Last-Event-ID gets exactly the rest
    produce(4, 6)
    rest = read_frames(api, f"/streams/{stream}", 3, {"Last-Event-ID": first[-1][0] or ""})
    assert [f[2]["position"] for f in rest] == [3, 4, 5]
    assert [f[2]["data"]["amount"] for f in rest] == [4, 5, 6]
    # ?position= starts elsewhere when there is no Last-Event-ID
    middle = read_frames(api, f"/streams/{stream}?position=2", 2)
    assert [f[0] for f in middle] == ["2", "3"]
    http.close()


def test_a_category_stream_uses_global_positions(api: Served) -> None:
    entities = [unique("ssc") for _ in range(3)]
    http = httpx.Client(base_url=api.url, timeout=30)
    start = http.get("/categories/counter", params={"position": 1, "batch_size": 10_000}).json()
    after = start["next_position"]

    def produce() -> None:
        time.sleep(0.3)
        for entity in entities:
            post(http, "Counter", entity, "increment", {"amount": 1})

    writer = in_background(produce)
    got = read_frames(api, f"/categories/counter?position={after}", 3)
    writer.join()
    assert [f[2]["stream_name"] for f in got] == [f"counter-{e}" for e in entities]
    assert [int(f[0] or 0) for f in got] == [f[2]["global_position"] for f in got]
    resumed = read_frames(
        api, "/categories/counter", 2, {"Last-Event-ID": str(int(got[0][0] or 0))}
    )
    assert [f[2]["stream_name"] for f in resumed] == [f"counter-{e}" for e in entities[1:]]
    bad = http.get("/categories/counter", headers={**SSE, "Last-Event-ID": "x"})
    assert bad.status_code == 400
    http.close()


def test_shutdown_ends_open_streams_promptly(api_store: str) -> None:
    with serving(api_store, capture=True) as served:
        opened = threading.Event()
        ended: list[float] = []

        def listen() -> None:
            with (
                httpx.Client(base_url=served.url, timeout=60) as http,
                http.stream("GET", "/categories/counter?position=999999999", headers=SSE) as r,
            ):
                opened.set()
                for _ in r.iter_lines():
                    pass
            ended.append(time.monotonic())

        listener = in_background(listen)
        assert opened.wait(30)
        time.sleep(0.2)
        stopped_at = time.monotonic()
        code, log = served.stop(signal.SIGTERM, timeout=20)
        listener.join(10)
        assert code == 0, log
        assert ended and ended[0] - stopped_at < 5, "the stream did not end at shutdown"
        assert "Application shutdown complete" in log
