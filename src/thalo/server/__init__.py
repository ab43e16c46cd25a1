"""thalo.server."""
