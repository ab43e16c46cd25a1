"""Test support shipped with thalo: the conformance suites and pytest fixtures.

- ``thalo.testing.conformance``: ``MessageStoreConformance`` and
  ``ProcessRaceConformance``, to run against any ``MessageStore``;
- ``thalo.testing.guests``: the guest conformance suite, one language-neutral
  scenario per ESDL (``BANK_ACCOUNT``, ``COUNTER``) run against any component;
- ``thalo.testing.pytest_plugin``: ``postgres_url``, ``store_url``, ``store``,
  ``store_factory`` (enable with ``pytest_plugins = ["thalo.testing.pytest_plugin"]``);
- ``thalo.testing.postgres``: a PostgreSQL database with Message DB for tests.

Only tests import this package (it needs pytest).
"""
