"""thalo.runtime."""
