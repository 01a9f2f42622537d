"""The web chat in headless Chromium against the sandbox and the real bot: press Start, pick a
language, open the catalog by its button, check what the page shows, then buy a course with
the sandbox Pay button; and, on the sandbox alone, send a photo, a file and a voice message
and watch the unread badges. Screenshots land in tmp_path."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from sandbox.demo import BotProcess
from tests.e2e.conftest import start_bot
from tests.e2e.webdriver import Browser, available
from tests.sandbox.test_user_media import png

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

    # An empty chat offers Start, which sends /start.
    await browser.wait_for("return !!document.querySelector('#start-button')")
    await browser.click("#start-button")
    await browser.wait_for(HAS_MESSAGE, "Welcome to Lyceum, Webby")
    assert await browser.run("return document.querySelector('#start-prompt') === null")
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


UNREAD = """
const item = document.querySelector(`#chat-list .chat-item[data-chat-id="${arguments[0]}"]`);
const badge = item && item.querySelector('.unread-badge');
return item ? [item.dataset.unread, badge ? badge.textContent : null] : null;
"""
LOADED_IMAGES = """
return Array.from(document.querySelectorAll('img.photo'))
  .filter(i => i.complete && i.naturalWidth > 0).map(i => [i.naturalWidth, i.naturalHeight]);
"""


def one_second_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 8000)
    return path


async def test_web_chat_media_and_unread_badges(
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    browser: Browser,
    tmp_path: Path,
) -> None:
    learner = await learner_client.create_user("Mia", "en")
    await browser.get(f"{sandbox_server.chat_url}?user={learner.id}")
    await browser.wait_for("return document.body.dataset.ready === '1'")
    await browser.wait_for("return !!document.querySelector('#start-prompt #start-button')")
    await browser.screenshot(tmp_path / "webchat-start.png")
    await browser.click("#start-button")
    await browser.wait_for("return !document.querySelector('#start-prompt')")
    assert (await learner.messages())[0].text == "/start"

    # A photo with the typed text as its caption; the bot sends it back by file_id.
    (tmp_path / "lesson.png").write_bytes(png(64, 48))
    await browser.type("#text-input", "Lesson one")
    await browser.type("#photo-input", str(tmp_path / "lesson.png"))
    await browser.wait_for("return document.querySelectorAll('img.photo').length === 1")
    photo = (await learner.messages())[-1]
    assert photo.raw["caption"] == "Lesson one" and photo.raw["photo"][-1]["width"] == 64
    assert await browser.run("return document.querySelector('#text-input').value") == ""
    file_id = photo.raw["photo"][-1]["file_id"]
    sent = await sandbox_server.call("sendPhoto", {"chat_id": learner.id, "photo": file_id})
    assert sent["ok"]
    await wait_value(browser, LOADED_IMAGES, [[64, 48], [64, 48]])

    # A document and a voice message (its length read by the browser).
    (tmp_path / "notes.txt").write_text("notes")
    await browser.type("#document-input", str(tmp_path / "notes.txt"))
    await browser.wait_for("return !!document.querySelector('a.document')")
    await browser.type("#voice-input", str(one_second_wav(tmp_path / "hello.wav")))
    await browser.wait_for("return !!document.querySelector('.voice audio')")
    doc, voice = (await learner.messages())[-2:]
    assert doc.raw["document"]["file_name"] == "notes.txt"
    assert voice.raw["voice"]["duration"] == 1
    sent = await sandbox_server.call(
        "sendVoice", {"chat_id": learner.id, "voice": voice.raw["voice"]["file_id"]}
    )
    assert sent["ok"] and sent["result"]["voice"]["duration"] == 1
    await browser.screenshot(tmp_path / "webchat-media.png")

    # Messages in a chat not open show as an unread badge, gone once the chat is opened.
    club = await learner.create_chat("Club", add_bot=True)
    await wait_value(browser, UNREAD, ["0", None], club.id)
    for text in ("news", "more news"):
        assert (await sandbox_server.call("sendMessage", {"chat_id": club.id, "text": text}))["ok"]
    await wait_value(browser, UNREAD, ["2", "2"], club.id)
    await wait_value(browser, UNREAD, ["0", None], learner.id)  # the open chat
    await browser.screenshot(tmp_path / "webchat-unread.png")
    await browser.click(f'#chat-list .chat-item[data-chat-id="{club.id}"]')
    await browser.wait_for(HAS_MESSAGE, "more news")
    await wait_value(browser, UNREAD, ["0", None], club.id)
    assert (await learner.unread())[club.id] == 0
    await sandbox_server.call("sendMessage", {"chat_id": learner.id, "text": "psst"})
    await wait_value(browser, UNREAD, ["1", "1"], learner.id)


async def wait_value(browser: Browser, script: str, want: object, *args: object) -> None:
    """Until the script returns exactly ``want`` (the page redraws after each change)."""
    got = None
    for _ in range(100):
        got = await browser.run(script, *args)
        if got == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{got!r} != {want!r}")


async def test_web_chat_quiz_poll_answer(
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    browser: Browser,
    tmp_path: Path,
) -> None:
    """A quiz the bot sent shows its options; a tap answers it: the bot gets poll_answer."""
    learner = await learner_client.create_user("Quinn", "en")
    await browser.get(f"{sandbox_server.chat_url}?user={learner.id}")
    await browser.wait_for("return document.body.dataset.ready === '1'")
    await browser.click("#start-button")
    await browser.wait_for("return !document.querySelector('#start-prompt')")
    sent = await sandbox_server.call(
        "sendPoll",
        {"chat_id": learner.id, "question": "2 + 2 = ?", "options": [{"text": "3"}, {"text": "4"}],
         "type": "quiz", "correct_option_ids": [1], "is_anonymous": False,
         "explanation": "Count them"},
    )  # fmt: skip
    assert sent["ok"], sent
    await browser.wait_for("return document.querySelectorAll('.poll-option').length === 2")
    await browser.screenshot(tmp_path / "webchat-quiz.png")
    await browser.run("document.querySelectorAll('.poll-option')[0].click()")
    await browser.wait_for("return document.querySelector('#toast').textContent.includes('Wrong')")
    answers = [u["poll_answer"] for u in await learner_client.pending_updates()
               if "poll_answer" in u]  # fmt: skip
    assert [(a["user"]["id"], a["option_ids"]) for a in answers] == [(learner.id, [0])]
    assert sandbox_server.violations == []
