"""The host's half of upcasting (runtime/upcasting.py), on metadata as each store gives it
back: SQLite keeps thalo's compact text, PostgreSQL's jsonb prints its own."""

from __future__ import annotations

import orjson

from thalo.esdl import parse
from thalo.runtime.upcasting import Upcaster

SCHEMA = parse(
    'version = "0.3.0"\naggregate A {\n  go() -> E\n  stop() -> F\n  halt() -> G\n}\n'
    'event E version 3 {\n  a: Long\n  memo: String = "-"\n  note: String? = "n"\n}\n'
    "event F version 2 {\n  a: Long\n}\n"
    "event G {\n  a: Long\n}\n"
)


def test_what_every_event_records() -> None:
    upcaster = Upcaster(SCHEMA)
    assert upcaster.written == {"E": "3", "F": "2", "G": "1"}
    assert upcaster.current == {"E": 3, "F": 2}, "types at version 1 are never looked at"


def test_current_events_pass_untouched_in_either_text_form() -> None:
    upcaster = Upcaster(SCHEMA)
    compact = orjson.dumps({"thaloModuleVersion": "0.3.0", "schemaVersion": "3"}).decode()
    jsonb = '{"schemaVersion": "3", "thaloModuleVersion": "0.3.0"}'
    for metadata in (compact, jsonb, '{"schemaVersion": 3}', '{"schemaVersion":"4"}'):
        assert upcaster.upcast("E", '{"a": 1, "memo": "x"}', metadata) is None, metadata


def test_older_events_get_their_defaults_and_stored_version() -> None:
    upcaster = Upcaster(SCHEMA)
    for metadata, version in ((None, 1), ("{}", 1), ('{"schemaVersion": "2"}', 2), ("[1]", 1)):
        data, stored = upcaster.upcast("E", '{"a": 1, "note": null}', metadata)  # type: ignore[misc]
        assert stored == version
        assert orjson.loads(data) == {"a": 1, "memo": "-", "note": None}
    # Without defaults to fill, the stored data passes as it is (only the version is told).
    assert upcaster.upcast("F", '{"a":  1}', None) == (b'{"a":  1}', 1)
