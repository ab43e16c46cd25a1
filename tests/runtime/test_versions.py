"""Living with versions, on both stores: the compatibility check at publish, upcasting of
stored events, and time travel with the module version that wrote the history."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from components import Built
from helpers import EXAMPLES

from thalo.core import NewMessage, WrittenBy
from thalo.errors import IncompatibleSchema, InvalidModule, ModuleNotFound, UpcastFailed
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


async def test_publish_replays_old_events_through_the_new_upcasting_and_refuses_a_miss(
    store: MessageStore, built: dict[str, Built], bank_v2_without_hook: Built
) -> None:
    """The version bump declares upcasting, but nothing fills ``currency``: refused at
    publish (a sample of 0.1.0's shape: nothing is stored), not at the first replay."""
    registry = Registry(store)
    bank = built["BankAccount"]
    await registry.publish(bank.schema_text, bank.wasm)
    with pytest.raises(UpcastFailed) as refused:
        await registry.publish(bank_v2_without_hook.schema_text, bank_v2_without_hook.wasm)
    error = refused.value
    assert isinstance(error, IncompatibleSchema)  # what scripts catching that catch
    assert (error.event_type, error.stored_version) == ("DepositedFunds", 1)
    assert error.origin == "a sample of the shape 0.1.0 declared; none is stored"
    assert "currency" in error.reason and error.exit_code == 2 and error.http_status == 409
    assert [r.version for r in await registry.modules("BankAccount")] == ["0.1.0"]
    # Allowed, it publishes (and the replay fails later, as the user chose).
    await registry.publish(
        bank_v2_without_hook.schema_text, bank_v2_without_hook.wasm, allow_breaking=True
    )
    assert [r.version for r in await registry.modules("BankAccount")] == ["0.1.0", "0.2.0"]


async def test_publish_replays_the_oldest_stored_event_of_each_older_version(
    store: MessageStore, built: dict[str, Built], bank_v2: Built
) -> None:
    """bank_v2's hook fills ``currency``, but the oldest stored deposit lacks ``balance``
    (an early bug, say): the store's own events are what publish replays."""
    registry = Registry(store)
    bank = built["BankAccount"]
    await registry.publish(bank.schema_text, bank.wasm)
    await store.write_message("bankAccount-acc-0", NewMessage("DepositedFunds", {"amount": 2}))
    bad = await store.get_last_stream_message("bankAccount-acc-0")
    assert bad is not None
    async with Runtime(store, registry=registry) as runtime:  # good deposits after it
        await runtime.execute("BankAccount", "acc-1", "open_account", {"initial_balance": 10})
        await runtime.execute("BankAccount", "acc-1", "deposit_funds", {"amount": 5})
    with pytest.raises(UpcastFailed) as refused:
        await registry.publish(bank_v2.schema_text, bank_v2.wasm)
    error = refused.value
    assert error.origin == f"the oldest stored, at global position {bad.global_position}"
    assert "balance" in error.reason
    assert str(error).startswith(
        "cannot publish BankAccount 0.2.0: DepositedFunds: events stored at version 1 do not "
        "decode after upcasting (the oldest stored, at global position"
    )
    assert [r.version for r in await registry.modules("BankAccount")] == ["0.1.0"]


# --- 2. upcasting ------------------------------------------------------------------


async def test_events_of_0_1_0_are_upcast_when_0_2_0_replays_them(
    store: MessageStore, built: dict[str, Built], bank_v2: Built
) -> None:
    registry = await _bank_with_deposits(store, built)  # open 10, deposit 5: by 0.1.0
    stream = "bankAccount-acc-1"
    # An event written before thalo recorded schema versions reads as version 1.
    await store.write_message(
        stream,
        NewMessage("DepositedFunds", {"amount": 2, "balance": 17}, {"thaloModuleVersion": "0.1.0"}),
        expected_version=1,
    )
    compatibility = await registry.compatibility(parse(bank_v2.schema_text))
    assert compatibility.refused == ()
    assert compatibility.diff is not None
    assert [c.render() for c in compatibility.diff.changes if c.breaking] == [
        '~ DepositedFunds.memo: added, required (String = "(none)") (upcast: the default '
        "fills events of version < 2)",
        "~ DepositedFunds.currency: added, required (String) (upcast: the module's upcast "
        "hook, for events of version < 2)",
    ]
    await registry.publish(bank_v2.schema_text, bank_v2.wasm)

    async with Runtime(store, registry=registry, snapshot_every=0) as runtime:
        # The command is decided on state 0.2.0 rebuilt from 0.1.0's events.
        (event,) = await runtime.execute(
            "BankAccount", "acc-1", "deposit_funds", {"amount": 3, "memo": "gift"}
        )
        assert event.data == {"amount": 3, "balance": 20, "memo": "gift", "currency": "CHF"}
        now = await runtime.state("BankAccount", "acc-1")
    assert (now.module_version, now.state["balance"]) == ("0.2.0", 20)
    assert now.state["deposits"] == [
        [5, "(none)", "EUR"],  # memo: the ESDL default; currency: the module's upcast hook
        [2, "(none)", "EUR"],
        [3, "gift", "CHF"],
    ]
    stored = await store.get_stream_messages(stream, 0, 10)
    assert [(m.type, m.meta("schemaVersion")) for m in stored] == [
        ("OpenedAccount", "1"),
        ("DepositedFunds", "1"),
        ("DepositedFunds", None),
        ("DepositedFunds", "2"),
    ]
    assert stored[1].data == {"amount": 5, "balance": 15}, "the store keeps what was written"

    # 0.2.0 writes OpenedAccount at version 1 and DepositedFunds at 2 in one stream.
    async with Runtime(store, registry=registry) as runtime:
        await runtime.execute("BankAccount", "acc-2", "open_account", {"initial_balance": 0})
        await runtime.execute("BankAccount", "acc-2", "deposit_funds", {"amount": 1})
    fresh = await store.get_stream_messages("bankAccount-acc-2", 0, 10)
    assert [m.meta("schemaVersion") for m in fresh] == ["1", "2"]


# --- 3. time travel with the module that wrote the history ---------------------------


async def test_time_travel_replays_with_the_version_that_wrote_the_history(
    store: MessageStore, built: dict[str, Built], bank_v2: Built
) -> None:
    registry = await _bank_with_deposits(store, built)  # 0 OpenedAccount, 1 DepositedFunds
    await registry.publish(bank_v2.schema_text, bank_v2.wasm)
    async with Runtime(store, registry=registry, snapshot_every=2) as runtime:
        for amount in (3, 1):  # 2, 3: by 0.2.0 (and a snapshot of 0.2.0's state)
            await runtime.execute("BankAccount", "acc-1", "deposit_funds", {"amount": amount})
        stored = await store.get_stream_messages("bankAccount-acc-1", 0, 10)
        versions = [m.meta("thaloModuleVersion") for m in stored]
        assert versions == ["0.1.0", "0.1.0", "0.2.0", "0.2.0"]

        early = await runtime.state("BankAccount", "acc-1", at_position=1)
        assert (early.module_version, early.module_chosen_by) == ("0.1.0", "history")
        assert early.state == {"balance": 15, "closed": False, "opened": True}  # 0.1.0's state
        assert early.written_by == (WrittenBy("0.1.0", 0, 1),)

        late = await runtime.state("BankAccount", "acc-1", at_position=3)
        assert (late.module_version, late.module_chosen_by) == ("0.2.0", "history")
        assert late.written_by == (WrittenBy("0.1.0", 0, 1), WrittenBy("0.2.0", 2, 3))
        assert late.state["deposits"] == [[5, "(none)", "EUR"], [3, "", "CHF"], [1, "", "CHF"]]

        switch = await runtime.state("BankAccount", "acc-1", at_time=stored[2].time)
        assert (switch.version, switch.module_version) == (2, "0.2.0")
        before = await runtime.state("BankAccount", "acc-1", at_time=stored[1].time)
        assert (before.version, before.module_version) == (1, "0.1.0")

        asked = await runtime.state("BankAccount", "acc-1", at_position=1, module_version="0.2.0")
        assert (asked.module_version, asked.module_chosen_by) == ("0.2.0", "request")
        assert asked.state["deposits"] == [[5, "(none)", "EUR"]]
        assert asked.to_dict()["written_by"] == [{"module_version": "0.1.0", "from": 0, "to": 1}]

        now = await runtime.state("BankAccount", "acc-1")
        assert (now.version, now.module_version, now.module_chosen_by) == (3, "0.2.0", "newest")
        assert now.written_by == ()
        with pytest.raises(ModuleNotFound, match=r"BankAccount 9\.9\.9 is not published"):
            await runtime.state("BankAccount", "acc-1", at_position=1, module_version="9.9.9")
