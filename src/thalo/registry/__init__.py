"""thalo.registry."""
