"""The SSE parser on the wire format's own cases (the WHATWG event-stream rules)."""

from __future__ import annotations

from thalo.client import ServerSentEvent, SSEDecoder


def events(text: str) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    found = [e for line in text.split("\n") if (e := decoder.feed(line)) is not None]
    return found, decoder


def test_fields_comments_and_dispatch() -> None:
    found, decoder = events(
        ": keep-alive\n"
        'id: 7\nevent: message\ndata: {"a": 1}\n\n'
        "retry: 1500\n: another comment\n\n"
        "data:first\ndata: second\n\n"
        "id\ndata: x\n\n"
    )
    assert found == [
        ServerSentEvent("message", '{"a": 1}', "7"),
        ServerSentEvent("message", "first\nsecond", "7"),  # the last id persists
        ServerSentEvent("message", "x", ""),  # an empty id resets it
    ]
    assert decoder.retry == 1500


def test_a_blank_line_without_data_dispatches_nothing_and_resets_the_type() -> None:
    found, _ = events("event: ping\n\ndata: y\n\n")
    assert found == [ServerSentEvent("message", "y", None)]


def test_only_one_leading_space_is_stripped_and_unknown_fields_are_ignored() -> None:
    found, decoder = events("data:  two spaces\nfoo: bar\nretry: soon\n\n")
    assert found == [ServerSentEvent("message", " two spaces", None)]
    assert decoder.retry is None


def test_an_event_without_a_final_blank_line_is_not_dispatched() -> None:
    found, _ = events("data: incomplete")
    assert found == []


def test_reset_discards_a_half_received_event() -> None:
    decoder = SSEDecoder()
    for line in ("id: 3", "data: {}", "", "event: message", "data: {half"):
        decoder.feed(line)
    decoder.reset()
    assert decoder.feed("data: whole") is None
    assert decoder.feed("") == ServerSentEvent("message", "whole", "3")
