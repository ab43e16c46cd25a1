"""thalo.runtime: executes commands against published aggregates (router, cache, snapshots)."""

from thalo.runtime.runtime import REPLY_CATEGORY as REPLY_CATEGORY
from thalo.runtime.runtime import REPLY_FAILED as REPLY_FAILED
from thalo.runtime.runtime import REPLY_SUCCEEDED as REPLY_SUCCEEDED
from thalo.runtime.runtime import SNAPSHOT_TYPE as SNAPSHOT_TYPE
from thalo.runtime.runtime import EntityState as EntityState
from thalo.runtime.runtime import Recorded as Recorded
from thalo.runtime.runtime import Runtime as Runtime
from thalo.runtime.runtime import Submitted as Submitted

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
