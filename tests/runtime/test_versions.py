"""Living with versions, on both stores: the compatibility check at publish, upcasting of
stored events, and time travel with the module version that wrote the history."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from components import Built
from helpers import EXAMPLES

from thalo.errors import IncompatibleSchema, InvalidModule
from thalo.esdl import parse
from thalo.registry import Registry
from thalo.registry.compatibility import check_compatibility, stored_event_types
from thalo.runtime import Runtime
from thalo.store import MessageStore, open_store

pytestmark = pytest.mark.wasm

BANK_ESDL = (EXAMPLES / "bank_account" / "bank_account.esdl").read_text("utf-8")
NOT_A_COMPONENT = b"not a component: the check must refuse before looking at it"


def bank_esdl(version: str, *replacements: tuple[str, str]) -> str:
    """The bank_account ESDL at ``version`` with (old, new) text replacements."""
    text = BANK_ESDL.replace('version = "0.1.0"', f'version = "{version}"')
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


WITHOUT_CLOSE = (
    ("  close_account() -> ClosedAccount\n", ""),
    ("event ClosedAccount {}\n", ""),
)
WITHOUT_DEPOSIT = (
    ("  deposit_funds(amount: Long) -> DepositedFunds\n", ""),
    ("event DepositedFunds {\n  amount: Long\n  balance: Long\n}\n", ""),
)
RETYPED = (("event DepositedFunds {\n  amount: Long", "event DepositedFunds {\n  amount: String"),)
UPCAST = (
    (
        "event DepositedFunds {\n  amount: Long\n  balance: Long\n",
        'event DepositedFunds version 2 {\n  amount: Long\n  balance: Long\n  memo: String = ""\n',
    ),
)


@pytest_asyncio.fixture
async def store(empty_store_url: str) -> AsyncIterator[MessageStore]:
    async with open_store(empty_store_url) as opened:
        yield opened


async def _bank_with_deposits(store: MessageStore, built: dict[str, Built]) -> Registry:
    """bank_account 0.1.0 published, one account opened with a deposit (no closing)."""
    registry = Registry(store)
    bank = built["BankAccount"]
    await registry.publish(bank.schema_text, bank.wasm)
    async with Runtime(store, registry=registry) as runtime:
        await runtime.execute("BankAccount", "acc-1", "open_account", {"initial_balance": 10})
        await runtime.execute("BankAccount", "acc-1", "deposit_funds", {"amount": 5})
    return registry


# --- 1. the compatibility check at publish ------------------------------------------


async def test_publish_refuses_breaking_changes_with_a_field_level_diff(
    store: MessageStore, built: dict[str, Built]
) -> None:
    registry = await _bank_with_deposits(store, built)
    with pytest.raises(IncompatibleSchema) as info:
        # Refused before the component is even looked at: these bytes are no component.
        await registry.publish(bank_esdl("0.2.0", *RETYPED), NOT_A_COMPONENT)
    error = info.value
    assert (error.exit_code, error.http_status) == (2, 409)
    assert error.changes == ("! DepositedFunds.amount: retyped (Long -> String) — BREAKING",)
    assert str(error).startswith(
        "cannot publish BankAccount 0.2.0: it breaks events stored under 0.1.0 (lines marked !)"
        "\n  ! DepositedFunds.amount: retyped (Long -> String) — BREAKING\n"
    )
    # --allow-breaking gets past the check (to the component check, which these bytes fail).
    with pytest.raises(InvalidModule):
        await registry.publish(bank_esdl("0.2.0", *RETYPED), NOT_A_COMPONENT, allow_breaking=True)
    # So does a declared upcast: a version bump with a default for the new field.
    with pytest.raises(InvalidModule):
        await registry.publish(bank_esdl("0.2.0", *UPCAST), NOT_A_COMPONENT)
    assert [r.version for r in await registry.modules("BankAccount")] == ["0.1.0"]


async def test_removing_an_event_type_breaks_only_if_it_was_stored(
    store: MessageStore, built: dict[str, Built]
) -> None:
    registry = await _bank_with_deposits(store, built)
    assert await stored_event_types(
        store, "BankAccount", ["DepositedFunds", "ClosedAccount", "Nope"]
    ) == {"DepositedFunds"}

    never_stored = await registry.compatibility(parse(bank_esdl("0.2.0", *WITHOUT_CLOSE)))
    assert never_stored.refused == ()
    assert never_stored.diff is not None
    assert "    event ClosedAccount: removed (never stored)" in never_stored.diff.render()
    never_stored.require()  # nothing to refuse

    stored = await registry.compatibility(parse(bank_esdl("0.2.0", *WITHOUT_DEPOSIT)))
    assert [c.render() for c in stored.refused] == [
        "! event DepositedFunds: removed (events of it are stored) — BREAKING"
    ]
    with pytest.raises(IncompatibleSchema, match="event DepositedFunds: removed"):
        stored.require()
    stored.require(allow_breaking=True)


async def test_versions_are_compared_with_the_newest_and_returning_events_with_their_last_shape(
    store: MessageStore, built: dict[str, Built]
) -> None:
    await _bank_with_deposits(store, built)
    v1 = parse(BANK_ESDL)
    v2 = parse(bank_esdl("0.2.0", *WITHOUT_DEPOSIT))  # as if published with --allow-breaking
    back = parse(bank_esdl("0.3.0", *RETYPED))  # DepositedFunds returns, retyped
    outcome = await check_compatibility(store, back, [v1, v2])
    assert outcome.diff is not None
    assert outcome.diff.old_version == "0.2.0"
    assert [c.render() for c in outcome.diff.changes] == [
        "  event DepositedFunds: back (as in 0.1.0)",
        "! DepositedFunds.amount: retyped (Long -> String) — BREAKING",
        "  command deposit_funds: added",
    ]
    # A republish of a published version, or a lower one, is left to the version check.
    assert (await check_compatibility(store, v2, [v1, v2])).diff is None
    assert (await check_compatibility(store, v1, [v2])).diff is None
    assert (await check_compatibility(store, v1, [])).diff is None
