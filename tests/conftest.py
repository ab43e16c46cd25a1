"""Root conftest: the message-store fixtures every area may use (see docs/store.md)."""

pytest_plugins = ["thalo.testing.pytest_plugin", "components"]
