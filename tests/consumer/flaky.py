"""A projection that fails while ``THALO_TEST_FAIL`` is set: for the replay-parked CLI test.

With ``max_attempts=1`` a failing message is parked at once; ``THALO_TEST_LOG``
is the file the handler appends each handled message's global position to.
"""

from __future__ import annotations

import os

from thalo.consumer import Projection
from thalo.core import Message

flaky = Projection(os.environ["THALO_TEST_NAME"], os.environ["THALO_TEST_CATEGORY"], max_attempts=1)


@flaky.on("Happened")
def handle(message: Message) -> None:
    if message.data.get("bad") and os.environ.get("THALO_TEST_FAIL"):
        raise RuntimeError(f"cannot handle {message.global_position} yet")
    with open(os.environ["THALO_TEST_LOG"], "a") as out:
        out.write(f"{message.global_position}\n")
