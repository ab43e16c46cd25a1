"""thalo.client."""
