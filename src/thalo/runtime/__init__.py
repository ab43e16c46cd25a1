"""thalo.runtime: executes commands against published aggregates (router, cache, snapshots)."""

from thalo.runtime.runtime import SNAPSHOT_TYPE as SNAPSHOT_TYPE
from thalo.runtime.runtime import EntityState as EntityState
from thalo.runtime.runtime import Runtime as Runtime

__all__ = ["SNAPSHOT_TYPE", "EntityState", "Runtime"]
