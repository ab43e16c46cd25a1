"""The conformance suite on every backend: SQLite file, SQLite in memory, Message DB."""

from __future__ import annotations

from pathlib import Path

import pytest

from thalo.testing.conformance import MessageStoreConformance, ProcessRaceConformance
from thalo.testing.pytest_plugin import url_for


class TestConformance(MessageStoreConformance):
    """Runs on ``store_url``'s three backends (the fixture is parametrized)."""


class TestProcessRace(ProcessRaceConformance):
    """Two OS processes: on a SQLite file and on Message DB (``:memory:`` is per process)."""

    @pytest.fixture(params=["sqlite", pytest.param("messagedb", marks=pytest.mark.postgres)])
    def store_url(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:
        return url_for(request.param, tmp_path, request)
