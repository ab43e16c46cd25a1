"""thalo.runtime: executes commands against published aggregates (router, cache, snapshots)."""

from thalo.core import EntityState as EntityState
from thalo.runtime.command_streams import REPLY_CATEGORY as REPLY_CATEGORY
from thalo.runtime.command_streams import REPLY_FAILED as REPLY_FAILED
from thalo.runtime.command_streams import REPLY_SUCCEEDED as REPLY_SUCCEEDED
from thalo.runtime.command_streams import Submitted as Submitted
from thalo.runtime.entities import SNAPSHOT_TYPE as SNAPSHOT_TYPE
from thalo.runtime.recorded import Recorded as Recorded
from thalo.runtime.runtime import Runtime as Runtime

__all__ = [
    "REPLY_CATEGORY",
    "REPLY_FAILED",
    "REPLY_SUCCEEDED",
    "SNAPSHOT_TYPE",
    "EntityState",
    "Recorded",
    "Runtime",
    "Submitted",
]
