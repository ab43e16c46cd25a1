"""The SDK tests use the test guests' modules natively (no wasm)."""

from __future__ import annotations

import sys
from pathlib import Path

GUESTS = Path(__file__).resolve().parents[1] / "wasm" / "guests"

for guest in ("tally", "chaos"):
    path = str(GUESTS / guest)
    if path not in sys.path:
        sys.path.insert(0, path)
