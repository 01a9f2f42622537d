"""Drip in the chat, through the real Dispatcher and the app's own scheduler (aiogram
sender on a recording session): lessons with buttons, Done, /my progress, pause and
resume, quiet hours, a blocked learner, a broadcast with progress."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.sources import Source, number
from bot.app import App
from bot.models import Course, Lesson, ReleaseRule, User
from bot.scheduler.clock import ManualClock
from tests.support.broadcasts import send_broadcast
from tests.support.courses import OWNER, T0, course_with_lessons, enroll
from tests.support.updates import Harness, tg_user

REC = number(Source.RECOMMEND)  # suggestion buttons say where the card was opened

ANN = tg_user(1001, "Ann")
BO = tg_user(1002, "Bo")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def lessons_to(h: Harness, chat_id: int) -> list[SendMessage]:
    return [
        r for r in h.session.of_type(SendMessage) if r.chat_id == chat_id and "Lesson " in r.text
    ]


async def drain(app: App) -> int:
    return await app.scheduler.drain()


async def test_lessons_arrive_with_buttons_done_and_progress(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0), (ReleaseRule.AFTER_DAYS, 1)])
    await enroll(h, db, ANN, cid, clock)
    await drain(app)
    first = lessons_to(h, ANN.id)
    assert len(first) == 1
    assert "Lesson 1 of 2" in first[0].text and "Body 1" in first[0].text
    assert first[0].protect_content is True
    markup = first[0].reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    done = markup.inline_keyboard[0][0].callback_data
    assert done and done.startswith("ls:done:")
    await h.press(done, ANN)
    assert "Marked as done" in (h.session.requests[-1].text or "")  # type: ignore[attr-defined]
    await h.send("/my", ANN)
    assert "1 of 2 done" in h.last_text() and "next lesson on 2026-03-03 10:00" in h.last_text()

    clock.advance(days=1)
    await drain(app)
    assert len(lessons_to(h, ANN.id)) == 2
    assert "Lesson 2 of 2" in lessons_to(h, ANN.id)[1].text


async def test_pause_resume_and_quiet_hours(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0), (ReleaseRule.AFTER_DAYS, 1)])
    await enroll(h, db, ANN, cid, clock)
    await drain(app)
    await h.send("/my", ANN)
    await h.click("Pause", ANN)
    assert "paused" in h.last_text()
    clock.advance(days=3)
    await drain(app)
    assert len(lessons_to(h, ANN.id)) == 1
    await h.click("Resume", ANN)
    # Resumed at 10:00 three days later: lesson 2 is a day after the shifted start.
    await h.send("/quiet 09:00-12:00", ANN)
    clock.advance(days=1)  # 10:00 local: inside the new quiet hours
    await drain(app)
    assert len(lessons_to(h, ANN.id)) == 1
    clock.advance(hours=2)
    await drain(app)
    assert len(lessons_to(h, ANN.id)) == 2


async def test_blocked_learner_is_paused_and_resumed(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0)])
    await enroll(h, db, ANN, cid, clock)
    h.session.add_result(
        TelegramForbiddenError(method=None, message="Forbidden: bot was blocked by the user")  # type: ignore[arg-type]
    )
    await drain(app)
    user = await db.get(User, ANN.id)
    assert user is not None and user.is_blocked
    await db.close()
    h.session.clear()
    clock.advance(hours=1)
    await drain(app)
    assert lessons_to(h, ANN.id) == []
    await h.send("hello again", ANN)  # writing unblocks
    await drain(app)
    assert len(lessons_to(h, ANN.id)) == 1


async def test_schedule_edit_reaches_enrolled_learners(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0), (ReleaseRule.AFTER_DAYS, 5)])
    await enroll(h, db, ANN, cid, clock)
    await drain(app)
    second = await db.scalar(select(Lesson.id).where(Lesson.position == 2))
    await db.close()
    await h.send(f"/release {second} days 1", OWNER)
    assert "Re-planned for 1 enrolled learner." in h.last_text()
    clock.advance(days=1, seconds=1)
    await drain(app)
    sent = lessons_to(h, ANN.id)
    assert [("Lesson 1" in s.text, "Lesson 2" in s.text) for s in sent] == [
        (True, False),
        (False, True),
    ]


async def test_broadcast_reaches_every_learner_with_progress(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0)])
    for user in (ANN, BO):
        await enroll(h, db, user, cid, clock)
    await drain(app)
    await send_broadcast(h, OWNER, cid, "Live Q&A tonight!")
    assert "queued for 2 learners" in h.last_text()
    for _ in range(5):
        await drain(app)
        clock.advance(timedelta(seconds=6).total_seconds())
    for user in (ANN, BO):
        texts = [r.text for r in h.session.of_type(SendMessage) if r.chat_id == user.id]
        assert texts.count("Live Q&amp;A tonight!") + texts.count("Live Q&A tonight!") == 1
    edits = [r.text for r in h.session.of_type(EditMessageText)]
    assert edits and "2 of 2 delivered" in edits[-1]


async def test_a_finished_lesson_suggests_what_to_learn_next(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    from aiogram.methods import EditMessageReplyMarkup

    from bot.keyboards.callbacks import CourseCB
    from tests.support.updates import callback_update

    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0), (ReleaseRule.AFTER_DAYS, 1)])
    creator_id = await db.scalar(select(Course.creator_id).where(Course.id == cid))
    other = Course(creator_id=creator_id, title="Drip 201", published=True)
    db.add(other)
    await db.commit()
    # Suggestions never wait for a first fit (it would hold the Done transaction).
    from bot.services.recommendations import recommendations

    await recommendations(app.search).fitted()
    await enroll(h, db, ANN, cid, clock)
    await drain(app)
    lesson = lessons_to(h, ANN.id)[0]
    markup = lesson.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    done = markup.inline_keyboard[0][0].callback_data or ""
    await h.feed(callback_update(done, ANN, text=lesson.text, reply_markup=markup))
    edits = h.session.of_type(EditMessageReplyMarkup)
    assert edits, "no suggestions under the finished lesson"
    new = edits[-1].reply_markup
    assert isinstance(new, InlineKeyboardMarkup)
    buttons = [b.callback_data for row in new.inline_keyboard for b in row]
    assert done in buttons  # the lesson's own buttons stay
    assert CourseCB(id=other.id, src=REC).pack() in buttons
    assert CourseCB(id=cid, src=REC).pack() not in buttons


async def test_done_pressed_before_the_worker_recorded_the_send_counts(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    from bot.models import Delivery, DeliveryStatus

    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0), (ReleaseRule.AFTER_DAYS, 1)])
    await enroll(h, db, ANN, cid, clock)
    await drain(app)
    markup = lessons_to(h, ANN.id)[0].reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    done = markup.inline_keyboard[0][0].callback_data or ""
    # The message is on screen but the worker has not committed SENT yet.
    sent = select(Delivery).where(Delivery.message_id.is_not(None))  # lesson 1's
    delivery = await db.scalar(sent)
    assert delivery is not None
    delivery.status = DeliveryStatus.SENDING
    await db.commit()
    await h.press(done, ANN)
    db.expire_all()
    delivery = await db.scalar(sent)
    assert delivery is not None and delivery.done_at is not None


async def test_done_on_the_last_lesson_offers_rate_this_course(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    """Done on the last lesson carries "Rate this course", which opens the /review flow;
    once reviewed, Done (or a lesson before the last) carries it no more."""
    from aiogram.methods import EditMessageReplyMarkup

    from bot.keyboards.callbacks import RateCB
    from tests.support.updates import callback_update

    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0), (ReleaseRule.AFTER_DAYS, 0)])
    await enroll(h, db, ANN, cid, clock)
    await drain(app)
    first, last = lessons_to(h, ANN.id)[:2]
    rate = RateCB(c=cid, r=0).pack()

    def pressed(lesson: SendMessage) -> list[str]:
        markup = lesson.reply_markup
        assert isinstance(markup, InlineKeyboardMarkup)
        return [markup.inline_keyboard[0][0].callback_data or "", markup]  # type: ignore[list-item]

    async def done(lesson: SendMessage) -> list[str]:
        data, markup = pressed(lesson)
        h.session.clear()
        await h.feed(callback_update(data, ANN, text=lesson.text, reply_markup=markup))  # type: ignore[arg-type]
        edits = h.session.of_type(EditMessageReplyMarkup)
        if not edits:
            return []
        new = edits[-1].reply_markup
        assert isinstance(new, InlineKeyboardMarkup)
        return [b.callback_data or "" for row in new.inline_keyboard for b in row]

    # The first lesson, the day it arrived: not yet (not the last, not a day held).
    assert rate not in await done(first)
    # The last lesson: the button, at once.
    assert rate in await done(last)
    await h.press(rate, ANN)
    from aiogram.methods import AnswerCallbackQuery

    assert "after you have had it for a day" in (
        h.session.of_type(AnswerCallbackQuery)[-1].text or ""
    )
    clock.advance(timedelta(days=2).total_seconds())
    await h.press(rate, ANN)
    assert "How many stars" in h.last_text()
    await h.click("5", ANN)
    assert "Thank you" in h.last_text()
    # Reviewed: no more invitations.
    assert rate not in await done(last)
