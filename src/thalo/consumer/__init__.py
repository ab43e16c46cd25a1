"""thalo.consumer."""
