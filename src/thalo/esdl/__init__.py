"""thalo.esdl."""
