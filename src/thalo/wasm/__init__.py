"""thalo.wasm."""
