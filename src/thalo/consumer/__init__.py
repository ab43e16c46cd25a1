"""thalo.consumer: position-tracked category readers, projections and read models.

``Consumer`` is the low-level reader behind ``thalo run``; ``Projection``
(at least once) and ``ReadModel`` (exactly once, rows and position in one
transaction) are what users write read models with, and ``ProjectionRunner``
runs them (``thalo projection run``); ``Relay`` forwards a category to NATS
JetStream or Redis Streams (``thalo relay``). See docs/read-side.md, docs/relay.md.
"""

from thalo.consumer.consumer import POSITION_TYPE as POSITION_TYPE
from thalo.consumer.consumer import Consumer as Consumer
from thalo.consumer.consumer import Handler as Handler
from thalo.consumer.consumer import idle as idle
from thalo.consumer.database import ReadModelDatabase as ReadModelDatabase
from thalo.consumer.database import open_read_model_database as open_read_model_database
from thalo.consumer.positions import CatalogEntry as CatalogEntry
from thalo.consumer.positions import category_lag as category_lag
from thalo.consumer.positions import list_projections as list_projections
from thalo.consumer.projection import Hook as Hook
from thalo.consumer.projection import MessageHandler as MessageHandler
from thalo.consumer.projection import Projection as Projection
from thalo.consumer.projection import ReadModel as ReadModel
from thalo.consumer.projection import TransactionHandler as TransactionHandler
from thalo.consumer.projection import TransactionHook as TransactionHook
from thalo.consumer.relay import Broker as Broker
from thalo.consumer.relay import NatsBroker as NatsBroker
from thalo.consumer.relay import RedisBroker as RedisBroker
from thalo.consumer.relay import Relay as Relay
from thalo.consumer.relay import category_head as category_head
from thalo.consumer.runner import CategoryProgress as CategoryProgress
from thalo.consumer.runner import ProjectionFailed as ProjectionFailed
from thalo.consumer.runner import ProjectionRunner as ProjectionRunner
from thalo.consumer.runner import parked_origin as parked_origin
from thalo.consumer.wakeup import StoreWatcher as StoreWatcher

__all__ = [
    "POSITION_TYPE",
    "Broker",
    "CatalogEntry",
    "CategoryProgress",
    "Consumer",
    "Handler",
    "Hook",
    "MessageHandler",
    "NatsBroker",
    "Projection",
    "ProjectionFailed",
    "ProjectionRunner",
    "ReadModel",
    "ReadModelDatabase",
    "RedisBroker",
    "Relay",
    "StoreWatcher",
    "TransactionHandler",
    "TransactionHook",
    "category_head",
    "category_lag",
    "idle",
    "list_projections",
    "open_read_model_database",
    "parked_origin",
]
