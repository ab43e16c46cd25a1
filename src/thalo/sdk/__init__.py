"""thalo.sdk."""
