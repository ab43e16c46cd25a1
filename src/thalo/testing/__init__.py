"""thalo.testing."""
