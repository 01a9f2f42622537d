"""The web chat in headless Chromium against the sandbox and the real bot: send /start, pick a
language, open the catalog by its button, check what the page shows, then buy a course with
the sandbox Pay button. Screenshots land in tmp_path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from sandbox.demo import BotProcess
from tests.e2e.conftest import start_bot
from tests.e2e.webdriver import Browser, available

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))

MESSAGES_TEXT = "return Array.from(document.querySelectorAll('.message')).map(m => m.innerText)"
HAS_MESSAGE = """
return Array.from(document.querySelectorAll('.message.from-bot'))
  .some(m => m.innerText.includes(arguments[0]));
"""
CLICK_BUTTON = """
const buttons = Array.from(document.querySelectorAll('.inline-button'))
  .filter(b => b.textContent.trim() === arguments[0]);
if (!buttons.length) return false;
buttons[buttons.length - 1].click();
return true;
"""


@pytest.fixture
async def polling_bot(
    sandbox_server: SandboxServer, database_url: str, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    bot = await start_bot(sandbox_server, database_url, tmp_path, webhook=False)
    yield bot
    await bot.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    b = Browser()
    try:
        await b.start()
        yield b
    finally:
        await b.stop()


async def test_web_chat(
    polling_bot: BotProcess,
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    browser: Browser,
    tmp_path: Path,
) -> None:
    learner = await learner_client.create_user("Webby", "en")
    await browser.get(f"{sandbox_server.chat_url}?user={learner.id}")
    await browser.wait_for("return document.body.dataset.ready === '1'")

    await browser.type("#text-input", "/start")
    await browser.click("#send")
    await browser.wait_for(HAS_MESSAGE, "Welcome to Lyceum, Webby")
    assert await browser.wait_for(CLICK_BUTTON, "English")
    await browser.wait_for(HAS_MESSAGE, "What would you like to learn")
    assert await browser.wait_for(CLICK_BUTTON, "Done ✔")
    await browser.wait_for(HAS_MESSAGE, "all set")
    assert await browser.wait_for(CLICK_BUTTON, "📚 Catalog")
    await browser.wait_for(HAS_MESSAGE, "Catalog — page 1")

    shown = await browser.run(MESSAGES_TEXT)
    assert shown[0].startswith("/start")
    catalog = next(t for t in shown if "Catalog — page 1" in t)
    assert "Python for Absolute Beginners" in catalog
    labels = await browser.run(
        "return Array.from(document.querySelectorAll('.inline-button')).map(b => b.textContent)"
    )
    assert "Python for Absolute Beginners" in labels and "▶" in labels
    await browser.screenshot(tmp_path / "webchat.png")
    assert (tmp_path / "webchat.png").stat().st_size > 1000

    # Buy it with the sandbox's Pay button.
    assert await browser.wait_for(CLICK_BUTTON, "Python for Absolute Beginners")
    assert await browser.wait_for(CLICK_BUTTON, "🛒 Buy")
    await browser.wait_for(HAS_MESSAGE, "How would you like to pay?")
    assert await browser.wait_for(CLICK_BUTTON, "⭐ Telegram Stars — ⭐ 150")
    await browser.wait_for("return document.querySelectorAll('.pay-button').length > 0")
    await asyncio.sleep(0.3)  # a person's pause; see test_purchase.py
    await browser.click(".pay-button")
    await browser.wait_for(HAS_MESSAGE, "Payment received", timeout=15)
    await browser.screenshot(tmp_path / "webchat-paid.png")

    # The page and the sandbox agree.
    messages = await learner.messages()
    assert any(m.successful_payment for m in messages)
    # The receipt follows the payment; lesson 1 may already have come after it.
    paid_at = next(i for i, m in enumerate(messages) if m.successful_payment)
    assert any("Payment received" in (m.text or "") for m in messages[paid_at:])
    assert (await learner.state())["user"]["stars"] == 10_000 - 150

    # Paying the same invoice again: the bot refuses at pre-checkout, nothing is charged.
    invoice = next(m for m in messages if m.invoice is not None)
    again = await learner.pay(invoice)
    assert not again.paid and again.reason == "rejected"
    assert (await learner.state())["user"]["stars"] == 10_000 - 150
    assert sandbox_server.violations == []
