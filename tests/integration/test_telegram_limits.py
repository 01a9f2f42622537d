"""Telegram's limits as Telegram counts them, and one answer per callback query.

Every call the bot makes goes through tests/support/telegram_rules.py: entities parsed
by the sandbox's own parser, lengths in UTF-16 code units, a callback query answered at
most once. What Telegram would refuse is refused here too, so a lesson that "was added"
but can never be delivered, a broadcast cut inside a tag, or a second answer to a query
fails these tests.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from aiogram.types import MessageEntity, PhotoSize
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.models import Lesson
from bot.scheduler.clock import ManualClock
from bot.text import clip_html, visible_length
from tests.support.courses import OWNER, T0, course_with_lessons, day_zero_lessons, enroll
from tests.support.telegram_rules import ValidatingSession
from tests.support.updates import Harness, message_update, settle, tg_user

ANN = tg_user(1001, "Ann")
EMOJI = "🙂"  # two UTF-16 code units


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine, clock: ManualClock) -> AsyncIterator[App]:
    app = build_app(settings, session=ValidatingSession(), engine=engine, clock=clock)
    yield app
    await settle(app)


@pytest.fixture
def h(app: App) -> Harness:
    return Harness(app)


def violations(h: Harness) -> list[str]:
    session = h.session
    assert isinstance(session, ValidatingSession)
    return [str(v) for v in session.violations]


async def course(db: AsyncSession, title: str = "Limits 101", lessons: int = 0) -> int:
    return await course_with_lessons(db, day_zero_lessons(lessons), title)


async def lesson_count(db: AsyncSession) -> int:
    count = int(await db.scalar(select(func.count(Lesson.id))) or 0)
    await db.close()
    return count


# --- lessons that can never be delivered ------------------------------------------------


async def test_a_lesson_too_long_with_its_heading_is_refused_with_the_limit(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course(db)
    await h.send(f"/addlesson {cid}", OWNER)
    await h.send(EMOJI * 2040, OWNER)  # 4080 code units, and then the heading
    reply = h.last_text()
    assert "the limit is 4096" in reply and "an emoji counts as 2" in reply
    assert await lesson_count(db) == 0
    room = int(re.search(r"under (\d+) characters", reply).group(1))  # type: ignore[union-attr]

    # Still waiting for the lesson: the longest one that fits is taken and delivered.
    await h.send(EMOJI * (room // 2), OWNER)
    assert "added as number 1" in h.last_text()
    await enroll(h, db, ANN, cid, clock)
    await app.scheduler.drain()
    (lesson,) = [
        r for r in h.session.of_type(SendMessage) if r.chat_id == ANN.id and EMOJI in r.text
    ]
    assert lesson.text.endswith(EMOJI * (room // 2))
    assert not violations(h)


async def test_a_caption_too_long_with_its_heading_is_refused_with_the_limit(
    h: Harness, db: AsyncSession
) -> None:
    cid = await course(db)
    await h.send(f"/addlesson {cid}", OWNER)
    photo = [PhotoSize(file_id="AgACphoto", file_unique_id="u", width=10, height=10)]
    await h.feed(message_update(None, OWNER, photo=photo, caption="a" * 1000))
    assert "its caption is" in h.last_text() and "the limit is 1024" in h.last_text()
    assert await lesson_count(db) == 0
    await h.feed(message_update(None, OWNER, photo=photo, caption="a" * 800))
    assert "added as number 1" in h.last_text()
    assert not violations(h)


async def test_a_replaced_lesson_is_held_to_the_same_limit(h: Harness, db: AsyncSession) -> None:
    cid = await course(db, lessons=1)
    lesson_id = await db.scalar(select(Lesson.id).where(Lesson.course_id == cid))
    await db.close()
    await h.send(f"/editlesson {lesson_id}", OWNER)
    await h.send(EMOJI * 2040, OWNER)
    assert "the limit is 4096" in h.last_text()
    assert await db.scalar(select(Lesson.text).where(Lesson.id == lesson_id)) == "Body 1"


# --- broadcasts ---------------------------------------------------------------------------


async def test_a_long_bold_broadcast_reaches_the_learner_whole(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course(db, lessons=1)
    await enroll(h, db, ANN, cid, clock)
    await app.scheduler.drain()
    await h.send(f"/broadcast {cid}", OWNER)
    await h.click("Learners", OWNER)
    body = "x" * 4090
    bold = [MessageEntity(type="bold", offset=0, length=4090)]
    update = message_update(body, OWNER)
    assert update.message is not None
    message = update.message.model_copy(update={"entities": bold})
    await h.feed(update.model_copy(update={"message": message}))
    await h.click("Send", OWNER)
    assert "queued for 1 learner." in h.last_text()
    for _ in range(3):
        await app.scheduler.drain()
        clock.advance(timedelta(seconds=6).total_seconds())
    (sent,) = [r for r in h.session.of_type(SendMessage) if r.chat_id == ANN.id and body in r.text]
    assert sent.text == f"<b>{body}</b>"
    edits = [r.text for r in h.session.of_type(EditMessageText)]
    assert "1 of 1 delivered, 0 unreachable" in edits[-1]
    assert not violations(h)


def test_clipping_html_never_cuts_inside_a_tag() -> None:
    lines = [f"<b>{i}</b> {EMOJI * 30} &amp; more" for i in range(200)]
    clipped = clip_html("\n".join(lines))
    assert visible_length(clipped) <= 4096 and clipped.endswith("\n…")
    assert clipped.count("<b>") == clipped.count("</b>")
    one_line = "<b>" + EMOJI * 3000 + "</b>"
    assert visible_length(clip_html(one_line)) <= 4096
    assert "<b>" not in clip_html(one_line)
    assert clip_html("<b>" + "x" * 4090 + "</b>") == "<b>" + "x" * 4090 + "</b>"


# --- pause and resume ---------------------------------------------------------------------


async def test_pause_and_resume_answer_their_query_once_with_the_note(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cid = await course(db, lessons=2)
    await enroll(h, db, ANN, cid, clock)
    await app.scheduler.drain()
    caplog.set_level(logging.WARNING)
    for button, note in (("Pause", "Paused."), ("Resume", "Resumed.")):
        await h.send("/my", ANN)
        data = h.button(button)
        h.session.clear()
        await h.press(data, ANN)
        answers = h.session.of_type(AnswerCallbackQuery)
        assert len(answers) == 1, answers
        assert answers[0].text and answers[0].text.startswith(note)
    assert not violations(h)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
