"""Counters a runtime keeps about its own work, for ``/metrics`` (plain ints: no dependency).

The server turns them into Prometheus metrics at scrape time; keeping them
here as plain numbers costs the command path a few additions and no locks
(one event loop owns a runtime).
"""

from __future__ import annotations

__all__ = ["LatencyHistogram", "RuntimeStats"]

from bisect import bisect_left
from dataclasses import dataclass, field

# Seconds; what a store write takes, from a lone SQLite insert to a busy PostgreSQL.
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class LatencyHistogram:
    """A cumulative-on-read histogram of durations in seconds over fixed bucket bounds."""

    bounds: tuple[float, ...] = WRITE_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it) per bucket, +Inf last."""
        running, out = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass(slots=True)
class RuntimeStats:
    """What a runtime counted since it started."""

    cache_hits: int = 0
    cache_misses: int = 0
    rebuilds: int = 0
    conflicts: int = 0
    guest_traps: int = 0
    guest_timeouts: int = 0
    guest_out_of_memory: int = 0
    guest_invalid_output: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    restore_failures: int = 0
    store_writes: LatencyHistogram = field(default_factory=LatencyHistogram)
