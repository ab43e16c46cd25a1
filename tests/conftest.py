"""Root conftest: the message-store fixtures every area may use (see docs/store.md).

Builds and compiled components go to the shared cache (``$THALO_CACHE_DIR`` or
``~/.cache/thalo``), so later runs reuse them. It is bounded like any use of
thalo, least recently used out, at ``$THALO_CACHE_MAX_SIZE`` or else 4 GB here:
one run's working set (~30 builds of ~19 MB and their ~35 MB compilations) must
fit, or an LRU cache evicts every entry before its reuse and each run rebuilds.
"""

import os

os.environ.setdefault("THALO_CACHE_MAX_SIZE", "4GB")

pytest_plugins = ["thalo.testing.pytest_plugin", "components"]
