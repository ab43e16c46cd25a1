"""An aggregate that loops, hogs memory, crashes or pokes at the sandbox when asked."""

from __future__ import annotations

import os

from chaos_schema import ChaosBase, Done, Other

from thalo.sdk import Context, Ignore, Rejected
from thalo.sdk import log as thalo_log


class Chaos(ChaosBase):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.seen = 0

    def handle_spin(self, ctx: Context) -> Done:
        n = 0
        while True:
            n += 1

    def handle_hog(self, ctx: Context, megabytes: int) -> Done:
        for _ in range(megabytes):
            self._hoard_more()
        return Done(detail=f"kept {megabytes} MiB")

    def _hoard_more(self) -> None:
        chunk = bytearray(1 << 20)
        for i in range(0, len(chunk), 4096):
            chunk[i] = 1
        self.__dict__.setdefault("_kept", []).append(chunk)

    def handle_crash(self, ctx: Context, message: str) -> Done:
        raise RuntimeError(message)

    def handle_read_file(self, ctx: Context, path: str) -> Done:
        try:
            with open(path) as f:
                return Done(detail=f.read(100))
        except OSError as exc:
            return Done(detail=f"denied: {type(exc).__name__}")

    def handle_read_env(self, ctx: Context, name: str) -> Done:
        return Done(detail=repr(os.environ.get(name)) + f" of {len(os.environ)} variables")

    def handle_chat(self, ctx: Context, message: str) -> Done:
        thalo_log("info", message)
        thalo_log("warn", f"{message} (again)")
        print(f"{message} (printed)")
        return Done(detail="chatted")

    def handle_refuse(self, ctx: Context, reason: str) -> Done:
        raise Rejected(reason)

    def handle_skip(self, ctx: Context, reason: str | None) -> Done:
        raise Ignore(reason)

    def handle_wrong_event(self, ctx: Context) -> Done:
        return Other(detail="not declared")  # type: ignore[return-value]

    def handle_clock(self, ctx: Context) -> Done:
        import time

        return Done(detail=f"{time.time()}")

    def apply_done(self, event: Done) -> None:
        self.seen += 1

    def apply_other(self, event: Other) -> None:
        self.seen += 100
