"""Which guest calls run inline on the event loop, and which on a worker thread.

A hot guest call takes ~50 µs: inline it costs less than two thread hand-offs.
But an inline call holds the event loop, so one slow call (up to its budget)
would delay every other entity's command. Each module version therefore
learns, per command, how long its calls take (CPU time of the calling thread):
a command runs inline only after ``WARM`` consecutive calls under ``SLOW``
seconds. A slow call sends it back to worker threads for ``WARM`` calls; a slow
call while it is still on probation there, for ``WARM + PENALTY``. So a lone
spike (the guest's garbage collector) costs three thread hand-offs, and a
command that is slow stays off the loop. New commands start on workers, so even
the first slow call of a command holds no one up.
"""

from __future__ import annotations

__all__ = ["CallTimes"]

SLOW = 0.010  # seconds of CPU: a call longer than this should not hold the event loop
WARM = 3  # fast calls in a row before a command runs inline
PENALTY = 20  # extra fast calls a command must show after a slow one


class CallTimes:
    """Per command (or other call kind) of one module: inline, or on a worker thread?"""

    __slots__ = ("_fast",)

    def __init__(self) -> None:
        self._fast: dict[str, int] = {}  # consecutive fast calls (negative after a slow one)

    def inline(self, kind: str) -> bool:
        """Whether the next ``kind`` call may run on the event loop."""
        return self._fast.get(kind, 0) >= WARM

    def observe(self, kind: str, seconds: float) -> None:
        """Record how long a ``kind`` call took (it may run on any thread)."""
        fast = self._fast.get(kind, 0)
        if seconds <= SLOW:
            self._fast[kind] = fast + 1
        elif fast >= WARM:  # a spike in a run of fast calls: a short probation
            self._fast[kind] = 0
        else:  # slow again while on probation: it is a slow command
            self._fast[kind] = -PENALTY
