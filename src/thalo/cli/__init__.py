"""The ``thalo`` command-line interface."""
