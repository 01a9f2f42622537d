"""/help and /creatorhelp come from one command table that matches the routers."""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import User

from bot.app import App, bot_commands
from bot.handlers import commands
from bot.handlers.commands import Audience
from sandbox.formatting import parse_html, utf16_len
from tests.support.updates import Harness, tg_user

OWNER = tg_user(7, "Olga")  # ADMIN_IDS=7 in the test settings


def registered(router: Router) -> set[str]:
    """The command names of every message handler's Command filter, sub-routers too."""
    found: set[str] = set()
    for handler in router.message.handlers:
        for flt in handler.filters or ():
            if isinstance(flt.callback, Command):
                found.update(c for c in flt.callback.commands if isinstance(c, str))
    for sub in router.sub_routers:
        found |= registered(sub)
    return found


def listed(texts: list[str]) -> set[str]:
    return {m for text in texts for m in re.findall(r"^/([a-z]+)", text, flags=re.MULTILINE)}


def of(*audiences: Audience) -> set[str]:
    return {c.name for c in commands.COMMANDS if c.audience in audiences}


def test_every_registered_command_has_help_and_every_help_line_a_command(app: App) -> None:
    on_routers = registered(app.dp)
    assert on_routers, "no Command filters found: has the dispatcher's shape changed?"
    assert on_routers - commands.names() == set(), "add these to bot/handlers/commands.py"
    assert commands.names() - on_routers == set(), "these help lines have no handler"


async def say(h: Harness, text: str, user: User) -> list[str]:
    """What the bot sent in answer to this message."""
    h.session.clear()
    await h.send(text, user)
    return [r.text for r in h.session.of_type(SendMessage)]


async def test_help_lists_every_learner_command_in_both_languages(harness: Harness) -> None:
    li = tg_user(1002, "Li", "zh")
    for user, heading in ((tg_user(1001), "Find a course"), (li, "搜索课程")):
        texts = await say(harness, "/help", user)
        assert listed(texts) == of(Audience.LEARNER)
        assert heading in texts[0]
        for text in texts:
            plain, _entities = parse_html(text)  # valid Telegram HTML: no bare "<"
            assert utf16_len(plain) <= 4096
    assert "/search <i>&lt;" in texts[0]  # the usage, escaped (zh: its own words)


async def test_creatorhelp_lists_every_creator_command_grouped(harness: Harness) -> None:
    ann = tg_user(1001)
    texts = await say(harness, "/creatorhelp", ann)
    assert listed(texts) == of(Audience.CREATOR)
    joined = "\n".join(texts)
    for group in ("Courses", "Lessons", "Sales and promo codes", "Paid groups and plans"):
        assert f"<b>{group}</b>" in joined
    assert "Platform owners" not in joined
    assert "/addlesson <i>&lt;course id&gt;</i>" in joined
    for text in texts:
        parse_html(text)

    texts = await say(harness, "/creatorhelp", OWNER)
    assert listed(texts) == of(Audience.CREATOR, Audience.OWNER)
    assert "<b>Platform owners</b>" in "\n".join(texts)

    li = tg_user(1002, "Li", "zh")
    texts = await say(harness, "/creatorhelp", li)
    assert listed(texts) == of(Audience.CREATOR)
    assert "课时" in "\n".join(texts)
    for text in texts:
        parse_html(text)


def test_the_menu_comes_from_the_table(app: App) -> None:
    en = bot_commands(app.i18n, "en")
    zh = bot_commands(app.i18n, "zh")
    menu = [c.name for c in commands.COMMANDS if c.menu is not None]
    assert [c.command for c in en] == [c.command for c in zh] == menu
    assert {"start", "help", "paysupport"} <= set(menu)
    assert all(c.description for c in en + zh)
    assert {c.description for c in en}.isdisjoint({c.description for c in zh})


def test_pages_split_between_groups() -> None:
    pages = commands._pages(["a" * 3000, "b" * 1000, "c" * 3000, "d"])
    assert pages == ["a" * 3000 + "\n\n" + "b" * 1000, "c" * 3000 + "\n\nd"]
    # UTF-16 units, as Telegram counts: an emoji is two.
    assert len(commands._pages(["😀" * 2000, "😀" * 100])) == 2
