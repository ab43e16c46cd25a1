"""Versions over HTTP: the compatibility check refuses a breaking publish (409) unless
allowed, and a past state names the module versions that wrote and replayed it."""

from __future__ import annotations

import time

import pytest
from components import Built
from helpers import unique
from serving import serving

from thalo.client import Client
from thalo.core import WrittenBy
from thalo.errors import IncompatibleSchema, InvalidModule, PayloadInvalid

pytestmark = pytest.mark.wasm


def test_publish_check_and_time_travel_over_http(
    private_store: str, built: dict[str, Built], bank_v2: Built
) -> None:
    entity = unique("acc")
    breaking = (
        built["BankAccount"]
        .schema_text.replace('version = "0.1.0"', 'version = "0.3.0"')
        .replace("  initial_balance: Long\n}", "  initial_balance: String\n}")
    )
    with (
        serving(private_store, capture=True) as server,
        Client(server.url, server.admin_token) as admin,
    ):
        admin.execute("BankAccount", entity, "open_account", {"initial_balance": 1})
        admin.execute("BankAccount", entity, "deposit_funds", {"amount": 2})
        with pytest.raises(IncompatibleSchema) as info:
            admin.publish(breaking, b"no component needed: refused before")
        assert info.value.http_status == 409
        assert info.value.changes == (  # type: ignore[attr-defined]
            "! OpenedAccount.initial_balance: retyped (Long -> String) — BREAKING",
        )
        with pytest.raises(InvalidModule):  # allowed past the check, to the bytes' check
            admin.publish(breaking, b"no component", allow_breaking=True)

        assert admin.publish(bank_v2.schema_text, bank_v2.wasm)["version"] == "0.2.0"
        # The server follows a publish within its module check interval (1 s): until
        # then 0.1.0 serves, and refuses the memo 0.2.0 added.
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.execute("BankAccount", entity, "deposit_funds", {"amount": 3, "memo": "m"})
                break
            except PayloadInvalid:
                assert time.monotonic() < deadline, "0.2.0 never served"
                time.sleep(0.2)
        past = admin.state("BankAccount", entity, at_position=1)
        assert (past.module_version, past.module_chosen_by) == ("0.1.0", "history")
        assert past.written_by == (WrittenBy("0.1.0", 0, 1),)
        assert "deposits" not in past.state
        asked = admin.state("BankAccount", entity, at_position=1, module_version="0.2.0")
        assert (asked.module_version, asked.module_chosen_by) == ("0.2.0", "request")
        assert asked.state["deposits"] == [[2, "(none)", "EUR"]]
        now = admin.state("BankAccount", entity)
        assert (now.version, now.module_version, now.module_chosen_by) == (2, "0.2.0", "newest")
        assert now.written_by == ()
