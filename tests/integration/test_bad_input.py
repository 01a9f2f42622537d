"""Every registered command, typed badly by everyone: a polite reply, never an error.

The commands are read from the Dispatcher's routers (every message handler behind an
aiogram `Command` filter), so a new command joins this table by being registered. Each
is sent by a learner, the creator who owns the course, another creator and a platform
owner, bare and with garbage, Unicode digits, integers above 2^63, far dates and
negative numbers. What the bot sends goes through Telegram's own rules (the sandbox's
entity parser and UTF-16 lengths, see tests/support/telegram_rules.py).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import User as TgUser
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app, feature_routers
from bot.config import Settings
from bot.scheduler.clock import ManualClock
from bot.services import authoring
from bot.services.authoring import CourseDraft, LessonContent
from bot.services.users import get_creator
from tests.support.telegram_rules import ValidatingSession
from tests.support.updates import Harness, settle, tg_user

OWNER = tg_user(7, "Olga")  # ADMIN_IDS=7 in the test settings
CREATOR = tg_user(2001, "Cleo")
OTHER_CREATOR = tg_user(2002, "Otto")
APOLOGY = "Sorry, something went wrong"


def registered_commands(router: Router) -> Iterator[str]:
    """Names of the commands the message handlers of `router` and its sub-routers answer."""
    for handler in router.message.handlers:
        for filter_ in handler.filters or ():
            if isinstance(filter_.callback, Command):
                for command in filter_.callback.commands:
                    if isinstance(command, str):
                        yield command
                    elif not isinstance(command, re.Pattern):  # a BotCommand
                        yield command.command
    for sub in router.sub_routers:
        yield from registered_commands(sub)


def _commands_of_the_app() -> list[str]:
    dp = Dispatcher()
    dp.include_routers(*feature_routers())
    return sorted(set(registered_commands(dp)))


COMMANDS = _commands_of_the_app()

# Argument templates per kind of bad input. {course} and {lesson} are the creator's own
# course and lesson, so the second word of a command meets the bad value too.
INPUTS: dict[str, list[str]] = {
    "bare": [""],
    "garbage": ["<b>x</b> & <y>", "{course} <i>zz & </i> <"],
    "unicode digits": ["²", "{course} ²"],
    "above 2^63": ["99999999999999999999", "{course} 99999999999999999999"],
    "far date": ["{lesson} at 9999-12-31 23:00", "9999-12-31 23:00"],
    "negative": ["-5", "{course} -5"],
}
ROLES = ("learner", "creator", "other creator", "owner")


@pytest.fixture
async def bad_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[App]:
    app = build_app(settings, session=ValidatingSession(), engine=engine, clock=ManualClock())
    yield app
    await settle(app)


async def _world(h: Harness, db: AsyncSession) -> dict[str, int]:
    """A creator with a published course of two lessons, and a second creator."""
    await h.send("/becomecreator", CREATOR)
    await h.send("/becomecreator", OTHER_CREATOR)
    creator = await get_creator(db, CREATOR.id)
    assert creator is not None
    draft = CourseDraft(title="Bad <input> & co", price_minor=1999, stars_price=250)
    course = await authoring.create_course(db, creator, draft)
    lesson = await authoring.add_lesson(db, creator, course.id, LessonContent("text", text="One"))
    await authoring.add_lesson(db, creator, course.id, LessonContent("text", text="Two"))
    assert await authoring.set_published(db, creator, course.id, True)
    assert lesson is not None
    ids = {"course": course.id, "lesson": lesson.id}
    await db.commit()
    await db.close()
    return ids


@pytest.mark.parametrize("command", COMMANDS)
async def test_every_command_answers_bad_input_politely(
    command: str,
    bad_app: App,
    db: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The table is the Dispatcher's own: nothing registered escapes it.
    assert sorted(set(registered_commands(bad_app.dp))) == COMMANDS
    h = Harness(bad_app)
    session = h.session
    assert isinstance(session, ValidatingSession)
    ids = await _world(h, db)
    learners = (tg_user(uid, "Lea") for uid in itertools.count(30_000))
    caplog.set_level(logging.WARNING)
    problems: list[str] = []
    for role in ROLES:
        for kind, templates in INPUTS.items():
            for template in templates:
                # A fresh learner each time: /becomecreator would make them a creator.
                user: TgUser = {
                    "learner": next(learners),
                    "creator": CREATOR,
                    "other creator": OTHER_CREATOR,
                    "owner": OWNER,
                }[role]
                text = f"/{command} {template.format(**ids)}".rstrip()
                session.clear()
                caplog.clear()
                await h.send(text, user)
                said = [
                    r.text for r in session.of_type(SendMessage) if str(r.chat_id) == str(user.id)
                ]
                where = f"{role} · {kind} · {text!r}"
                errors = [
                    f"{r.getMessage()}: {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
                    for r in caplog.records
                    if r.levelno >= logging.ERROR
                ]
                if errors:
                    problems.append(f"{where}: logged {errors[0][:200]}")
                if session.violations:
                    problems.append(f"{where}: {session.violations[0]}")
                    session.violations.clear()
                if not said:
                    problems.append(f"{where}: no reply")
                elif any(APOLOGY in s for s in said):
                    problems.append(f"{where}: apologised")
                # Each input on its own: leave no conversation step behind.
                await bad_app.dp.fsm.resolve_context(bad_app.bot, user.id, user.id).clear()
    assert not problems, "\n".join(problems)
