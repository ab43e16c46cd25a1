"""thalo: an event-sourcing runtime for WebAssembly.

Importing ``thalo`` is cheap: no wasmtime, psycopg or server stack is loaded
until a layer that needs it is imported.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
