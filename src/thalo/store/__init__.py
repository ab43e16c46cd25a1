"""The message store: one async protocol, Message DB's semantics, two backends.

``open_store(url)`` opens the embedded SQLite backend (``sqlite:///file.db``,
``sqlite://:memory:``) or Message DB on PostgreSQL (``postgresql://…``). The
backends (``thalo.store.sqlite``, ``thalo.store.messagedb``) are imported only
when a URL asks for them, so importing this package stays cheap.
"""

from thalo.store.interface import Dialect as Dialect
from thalo.store.interface import MessageStore as MessageStore
from thalo.store.interface import SqlTransaction as SqlTransaction
from thalo.store.partition import consumer_group_member as consumer_group_member
from thalo.store.partition import hash_64 as hash_64
from thalo.store.url import StoreOpener as StoreOpener
from thalo.store.url import open_store as open_store
from thalo.store.url import redact_url as redact_url

__all__ = [
    "Dialect",
    "MessageStore",
    "SqlTransaction",
    "StoreOpener",
    "consumer_group_member",
    "hash_64",
    "open_store",
    "redact_url",
]
