"""Buying a course with Telegram Stars end to end: the real bot sends the invoice, answers the
pre_checkout_query in time, records the successful_payment and grants the course."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from sandbox.demo import BotProcess
from tests.e2e.conftest import start_bot


@pytest.fixture
async def polling_bot(
    sandbox_server: SandboxServer, database_url: str, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    bot = await start_bot(sandbox_server, database_url, tmp_path, webhook=False)
    yield bot
    await bot.stop()


async def test_buy_with_stars(
    polling_bot: BotProcess, sandbox_server: SandboxServer, learner_client: SandboxClient
) -> None:
    alice = await learner_client.create_user("Alice", "en", stars=1000)

    async def step(label: str, **expect: str) -> None:
        # At a person's pace: the bot has finished with one press before the next.
        await alice.click(label)
        await alice.wait_for_message(**expect)  # type: ignore[arg-type]
        await alice.wait_for_idle(quiet=0.2)

    await alice.send("/start")
    await alice.wait_for_message(contains="Welcome", timeout=15)
    await step("English", has_button="Done ✔")
    await step("Done ✔", has_button="📚 Catalog")
    await step("📚 Catalog", contains="Catalog — page 1")
    await step("Python for Absolute Beginners", has_button="🛒 Buy")
    await step("🛒 Buy", contains="How would you like to pay?")
    await alice.click("Telegram Stars")  # a unique substring of "⭐ Telegram Stars — ⭐ 150"
    invoice = await alice.wait_for_message(predicate=lambda m: m.invoice is not None)
    assert invoice.invoice is not None
    assert invoice.invoice["currency"] == "XTR" and invoice.invoice["total_amount"] == 150

    # Paying within milliseconds of the invoice can beat the bot's commit of the order (it then
    # refuses at pre-checkout: "This invoice is no longer valid"); a person takes longer.
    await alice.wait_for_idle(quiet=0.2)
    outcome = await alice.pay(invoice)
    assert outcome.paid, outcome.data
    thanks = await alice.wait_for_message(contains="Payment received")
    assert (await alice.state())["user"]["stars"] == 850
    paid = [m for m in await alice.messages() if m.successful_payment]
    assert paid[0].raw["successful_payment"]["telegram_payment_charge_id"] == outcome.charge_id

    await alice.click("🎒 My library", message=thanks)
    library = await alice.wait_for_message(contains="Python for Absolute Beginners")
    assert library.message_id >= thanks.message_id

    # Paying the same invoice again: the bot refuses at pre-checkout, nothing is charged.
    again = await alice.pay(invoice)
    assert not again.paid and again.reason == "rejected"
    assert (await alice.state())["user"]["stars"] == 850
    assert sandbox_server.violations == []
