"""The learner's first minutes with the real bot over the sandbox, by polling and by webhook:
/start, language, interests, catalog, a course card, search — and every request the bot made
conformed to the Bot API spec. One bot process per mode (starting it costs seconds)."""

from __future__ import annotations

from sandbox import SandboxServer
from sandbox.client import SandboxClient, SandboxUser
from sandbox.demo import BotProcess


async def settle(user: SandboxUser) -> None:
    """At a person's pace: the bot finishes one update (its commit) before the next press."""
    await user.wait_for_idle(quiet=0.15)


async def english_learner(alice: SandboxUser) -> None:
    await alice.send("/start")
    welcome = await alice.wait_for_message(contains="Welcome to Lyceum, Alice", timeout=15)
    await settle(alice)
    assert welcome.buttons == ["English", "中文"]

    await alice.click("English")
    interests = await alice.wait_for_message(contains="What would you like to learn")
    await settle(alice)
    assert interests.message_id == welcome.message_id  # edited in place
    assert "Programming" in interests.buttons and "Done ✔" in interests.buttons
    await alice.click("Programming")
    await alice.wait_for_message(has_button="✅ Programming")
    await settle(alice)
    await alice.click("Done ✔")
    menu = await alice.wait_for_message(contains="You're all set")
    await settle(alice)
    assert "📚 Catalog" in menu.buttons and "🔎 Search" in menu.buttons

    await alice.click("📚 Catalog")
    catalog = await alice.wait_for_message(contains="Catalog — page 1")
    await settle(alice)
    assert "Python for Absolute Beginners" in catalog.buttons
    assert "▶" in catalog.buttons
    await alice.click("▶")
    page2 = await alice.wait_for_message(contains="Catalog — page 2")
    await settle(alice)
    assert "◀" in page2.buttons
    await alice.click("◀")
    await alice.wait_for_message(contains="Catalog — page 1")
    await settle(alice)

    await alice.click("Python for Absolute Beginners")
    card = await alice.wait_for_message(contains="Python for Absolute Beginners")
    await settle(alice)
    assert "🛒 Buy" in card.buttons
    assert any(b.startswith("◀") for b in card.buttons)

    await alice.send("python")
    results = await alice.wait_for_message(predicate=lambda m: len(m.buttons) > 1)
    await settle(alice)
    assert any("Python" in b for b in results.buttons)
    await alice.send("/search")
    await alice.wait_for_message(contains="Send me a few words")
    await settle(alice)
    await alice.send("qwxzzkj")
    await alice.wait_for_message(contains="Nothing found")
    await settle(alice)


async def chinese_learner(li: SandboxUser) -> None:
    await li.send("/start")
    await li.wait_for_message(predicate=lambda m: "中文" in m.buttons, timeout=15)
    await settle(li)
    await li.click("中文")
    interests = await li.wait_for_message(predicate=lambda m: len(m.buttons) > 5)
    await settle(li)
    await li.click(interests.buttons[-1])  # Done
    menu = await li.wait_for_message(predicate=lambda m: len(m.buttons) >= 5)
    await settle(li)
    assert not any("Catalog" in b for b in menu.buttons)  # translated
    await li.send("设计")
    await li.wait_for_message(predicate=lambda m: m.message_id > menu.message_id)
    await settle(li)
    state = await li.state()
    assert any("菜单" in c["description"] or c["description"] for c in state["commands"])


async def test_first_minutes(
    running_bot: BotProcess, sandbox_server: SandboxServer, learner_client: SandboxClient
) -> None:
    alice = await learner_client.create_user("Alice", "en")
    li = await learner_client.create_user("Li", "zh")
    await english_learner(alice)
    await chinese_learner(li)

    assert sandbox_server.violations == []
    methods = {name for name, _ in sandbox_server.calls}
    assert {"setMyCommands", "sendMessage", "editMessageText", "answerCallbackQuery"} <= methods
    if running_bot.webhook:
        assert sandbox_server.webhook is not None
        assert sandbox_server.webhook["secret_token"] == "e2e-secret_123"
        assert "getUpdates" not in methods
    else:
        assert sandbox_server.webhook is None and "getUpdates" in methods
