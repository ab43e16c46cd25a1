"""Prometheus metrics of one server: its requests and commands, and its runtime's counters.

Each server has its own ``CollectorRegistry`` (no global state); the runtime's
plain counters (``RuntimeStats``) are read at scrape time by a collector, so
the command path pays nothing for them.
"""

from __future__ import annotations

__all__ = ["Metrics"]

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from thalo.runtime import Runtime

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The server's metrics; ``render`` gives the Prometheus text format."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide: *_created series only add noise here
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "thalo_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "thalo_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commands = Counter(
            "thalo_commands",
            "Commands by aggregate and outcome (ok, or the error code).",
            ["aggregate", "outcome"],
            registry=self.registry,
        )
        self.command_seconds = Histogram(
            "thalo_command_duration_seconds",
            "Command latency inside the server (runtime and store), by aggregate.",
            ["aggregate"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._commands: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}

    def command_done(self, aggregate: str, outcome: str, seconds: float) -> None:
        """Count one command and its latency (label children are looked up once)."""
        key = (aggregate, outcome)
        counter = self._commands.get(key)
        if counter is None:
            counter = self._commands[key] = self.commands.labels(aggregate, outcome)
        counter.inc()
        latency = self._latencies.get(aggregate)
        if latency is None:
            latency = self._latencies[aggregate] = self.command_seconds.labels(aggregate)
        latency.observe(seconds)

    def watch(self, runtime: Runtime, service: Any) -> None:
        """Expose ``runtime``'s own counters (and the service's in-flight gauge) too."""
        self.registry.register(_RuntimeCollector(runtime, service))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime, service: Any) -> None:
        self._runtime = runtime
        self._service = service

    def collect(self) -> Iterator[Any]:
        stats = self._runtime.stats
        counters = [
            (
                "thalo_entity_cache_hits",
                "Commands that found their entity cached.",
                stats.cache_hits,
            ),
            (
                "thalo_entity_cache_misses",
                "Commands whose entity had to be rebuilt from the store.",
                stats.cache_misses,
            ),
            (
                "thalo_entity_rebuilds",
                "Cached entities rebuilt after a lost race, trap or failed write.",
                stats.rebuilds,
            ),
            (
                "thalo_concurrency_conflicts",
                "Writes that lost an optimistic-concurrency race (then retried).",
                stats.conflicts,
            ),
            ("thalo_snapshots", "Snapshots written.", stats.snapshots),
            (
                "thalo_snapshot_failures",
                "Snapshots the guest or the store failed to write (the commands succeeded).",
                stats.snapshot_failures,
            ),
            (
                "thalo_snapshot_restore_failures",
                "Snapshots that could not be restored (the entity was replayed instead).",
                stats.restore_failures,
            ),
        ]
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)
        faults = CounterMetricFamily(
            "thalo_guest_faults", "Guest calls that failed, by kind.", labels=["kind"]
        )
        faults.add_metric(["trap"], stats.guest_traps)
        faults.add_metric(["timeout"], stats.guest_timeouts)
        faults.add_metric(["out_of_memory"], stats.guest_out_of_memory)
        faults.add_metric(["invalid_output"], stats.guest_invalid_output)
        yield faults
        yield CounterMetricFamily(
            "thalo_guest_instances_retired",
            "Guest instances retired for the memory they touched (Limits.recycle_bytes).",
            value=sum(loaded.wasm.instances_retired for loaded in self._runtime.modules.loaded()),
        )
        writes = stats.store_writes
        buckets = [(_le(bound), float(n)) for bound, n in writes.cumulative()]
        yield HistogramMetricFamily(
            "thalo_store_write_duration_seconds",
            "Latency of the store writes that recorded commands' events.",
            buckets=buckets,
            sum_value=writes.total,
        )
        yield GaugeMetricFamily(
            "thalo_entities_cached", "Entities held in the cache.", value=len(self._runtime.cache)
        )
        yield GaugeMetricFamily(
            "thalo_commands_in_flight", "Commands being executed now.", value=self._service.inflight
        )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
