"""Projections for the subprocess tests, configured by environment variables.

``THALO_TEST_CATEGORY`` (category read), ``THALO_TEST_NAME`` (projection
names' prefix), ``THALO_TEST_TABLE`` (the read model's table in the store's
database), ``THALO_TEST_LOG`` (file the at-least-once projection appends
global positions to), ``THALO_TEST_DELAY`` (seconds each message takes, to
make a batch last long enough to be killed in the middle of it).
"""

from __future__ import annotations

import os
import time

from thalo.consumer import Projection, ReadModel
from thalo.core import Message
from thalo.store import SqlTransaction

CATEGORY = os.environ["THALO_TEST_CATEGORY"]
NAME = os.environ["THALO_TEST_NAME"]
TABLE = os.environ["THALO_TEST_TABLE"]
LOG = os.environ.get("THALO_TEST_LOG")
DELAY = float(os.environ.get("THALO_TEST_DELAY", "0"))

applied = ReadModel(f"{NAME}_rm", CATEGORY, batch_size=200)


@applied.setup
async def create(tx: SqlTransaction) -> None:
    await tx.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} "
        "(global_position BIGINT PRIMARY KEY, times INTEGER NOT NULL, member TEXT)"
    )


@applied.on("Happened")
async def happened(message: Message, tx: SqlTransaction) -> None:
    if DELAY:
        time.sleep(DELAY)
    await tx.execute(
        f"INSERT INTO {TABLE} (global_position, times, member) VALUES (%s, 1, %s) "
        f"ON CONFLICT (global_position) DO UPDATE SET times = {TABLE}.times + 1",
        (message.global_position, os.environ.get("THALO_TEST_MEMBER", "")),
    )


logged = Projection(f"{NAME}_log", CATEGORY, position_update_interval=50)


@logged.on("Happened")
def log_it(message: Message) -> None:
    if DELAY:
        time.sleep(DELAY)
    if LOG:
        with open(LOG, "a") as out:
            out.write(f"{message.global_position}\n")


projections = [applied, logged]
read_model_only = [applied]
