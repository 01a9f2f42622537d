"""A full purchase in the sandbox for both in-chat methods: card (a Stripe provider token)
and Telegram Stars; then a Stars refund by the admin and the Stars reconciliation, all
through the real bot process (``python -m bot run``) and the learner's client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import SandboxServer
from sandbox.client import Message, SandboxClient, SandboxUser
from sandbox.demo import BotProcess
from tests.e2e.conftest import ROOT

COURSE = "Python for Absolute Beginners"  # $19.00 or ⭐ 150 in the demo catalog
PROVIDER_TOKEN = "284685063:TEST:sandbox-stripe"


@pytest.fixture
async def people(learner_client: SandboxClient) -> dict[str, SandboxUser]:
    # Created before the bot starts, so the admin's id can go into ADMIN_IDS.
    return {
        "boss": await learner_client.create_user("Boss", "en"),
        "alice": await learner_client.create_user("Alice", "en", stars=1000),
        "bob": await learner_client.create_user("Bob", "en", stars=1000),
    }


@pytest.fixture
async def paying_bot(
    sandbox_server: SandboxServer,
    database_url: str,
    tmp_path: Path,
    people: dict[str, SandboxUser],
) -> AsyncIterator[BotProcess]:
    env = {
        "THROTTLE_RATE": "0",
        "ADMIN_IDS": str(people["boss"].id),
        "PAYMENTS_PROVIDER_TOKEN": PROVIDER_TOKEN,
        "PLATFORM_FEE_PERCENT": "10",
    }
    bot = BotProcess(
        sandbox_server, database_url, extra_env=env, cwd=ROOT, log_path=tmp_path / "bot.log"
    )
    try:
        await bot.start(webhook=False, ready_timeout=60)
    except BaseException:
        await bot.stop()
        print((tmp_path / "bot.log").read_text(errors="replace")[-4000:])
        raise
    yield bot
    await bot.stop()


async def step(user: SandboxUser, label: str, **expect: str) -> Message:
    await user.click(label)
    message = await user.wait_for_message(**expect)  # type: ignore[arg-type]
    await user.wait_for_idle(quiet=0.2)
    return message


async def buy(user: SandboxUser, method_label: str) -> Message:
    await user.send("/catalog")
    await user.wait_for_message(contains="Catalog — page 1", timeout=15)
    await user.wait_for_idle(quiet=0.2)
    await step(user, COURSE, has_button="🛒 Buy")
    await step(user, "🛒 Buy", contains="How would you like to pay?")
    await user.click(method_label)
    invoice = await user.wait_for_message(predicate=lambda m: m.invoice is not None)
    await user.wait_for_idle(quiet=0.2)
    return invoice


def order_ref(receipt: Message) -> str:
    match = re.search(r"Order: (\S+)", receipt.text)
    assert match, receipt.text
    return match.group(1)


async def test_buy_by_card_and_with_stars_then_refund_and_reconcile(
    paying_bot: BotProcess,
    sandbox_server: SandboxServer,
    people: dict[str, SandboxUser],
) -> None:
    alice, bob, boss = people["alice"], people["bob"], people["boss"]

    # Card: a Telegram invoice in dollars with the Stripe provider token.
    invoice = await buy(alice, "💳 Card")
    assert invoice.invoice is not None
    assert (invoice.invoice["currency"], invoice.invoice["total_amount"]) == ("USD", 1900)
    outcome = await alice.pay(invoice)
    assert outcome.paid, outcome.data
    receipt = await alice.wait_for_message(contains="Payment received")
    assert "$19.00" in receipt.text and COURSE in receipt.text
    await alice.click("🎒 My library", message=receipt)
    await alice.wait_for_message(contains=COURSE)
    # The paid invoice cannot be paid twice.
    again = await alice.pay(invoice)
    assert not again.paid

    # Stars: XTR, no provider token.
    invoice = await buy(bob, "⭐ Telegram Stars")
    assert invoice.invoice is not None
    assert (invoice.invoice["currency"], invoice.invoice["total_amount"]) == ("XTR", 150)
    outcome = await bob.pay(invoice)
    assert outcome.paid, outcome.data
    receipt = await bob.wait_for_message(contains="Payment received")
    assert (await bob.state())["user"]["stars"] == 850

    # The admin sees both sales, then refunds Bob's Stars payment.
    await boss.send("/sales")
    sales = await boss.wait_for_message(contains="Sales")
    assert "USD: 1 sale," in sales.text and "XTR: 1 sale," in sales.text
    await boss.send(f"/refund {order_ref(receipt)}")
    await boss.wait_for_message(contains="Refunded payment")
    await bob.wait_for_message(contains="was refunded")
    assert (await bob.state())["user"]["stars"] == 1000

    # Our books and Telegram's Stars transactions agree (payment and refund).
    report = await paying_bot.run_command("reconcile-stars")
    assert "OK: no gaps" in report, report
    assert "Telegram Stars payments: 1; recorded here: 1" in report
    assert sandbox_server.violations == []
