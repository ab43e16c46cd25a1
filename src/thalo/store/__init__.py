"""thalo.store."""
