"""thalo.sdk: write aggregates in plain Python; they run natively in tests and inside wasm.

Pure standard library: this package is bundled into every Python guest component
and imports nothing of thalo's host side.
"""

from thalo.sdk._aggregate import Aggregate as Aggregate
from thalo.sdk._aggregate import CommandSpec as CommandSpec
from thalo.sdk._codec import decode_bytes as decode_bytes
from thalo.sdk._codec import encode_bytes as encode_bytes
from thalo.sdk._context import Context as Context
from thalo.sdk._errors import Ignore as Ignore
from thalo.sdk._errors import Rejected as Rejected
from thalo.sdk._log import log as log

__all__ = [
    "Aggregate",
    "CommandSpec",
    "Context",
    "Ignore",
    "Rejected",
    "decode_bytes",
    "encode_bytes",
    "log",
]
