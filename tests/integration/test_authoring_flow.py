"""Creators through the real Dispatcher: /newcourse, lessons, release rules, preview, rights."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram.methods import AnswerCallbackQuery, SendDocument, SendMessage, SendPhoto
from aiogram.types import Document, InlineKeyboardMarkup, PhotoSize
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.keyboards.authoring import PreviewCB
from bot.models import Course, Delivery, Enrollment, Entitlement, Lesson, ProductKind, ReleaseRule
from bot.scheduler.clock import ManualClock
from bot.services import access
from tests.support.recording import RecordingSession
from tests.support.updates import Harness, message_update, settle, tg_user

OWNER = tg_user(7, "Olga")  # ADMIN_IDS=7 in the test settings


@pytest.fixture
async def drip_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[App]:
    app = build_app(settings, session=RecordingSession(), engine=engine, clock=ManualClock())
    yield app
    await settle(app)


@pytest.fixture
def h(drip_app: App) -> Harness:
    return Harness(drip_app)


async def new_course(h: Harness, user=OWNER, publish: bool = True) -> None:  # type: ignore[no-untyped-def]
    await h.send("/newcourse", user)
    await h.send("SQL in 10 days", user)
    await h.send("Joins, windows and more.", user)
    await h.send("sql, data", user)
    await h.click("English", user)
    await h.send("19.99 USD", user)
    await h.send("250", user)
    await h.click("Publish" if publish else "draft", user)


async def test_new_course_conversation_then_lessons(h: Harness, db: AsyncSession) -> None:
    await new_course(h)
    # Pressing Publish on a course without lessons keeps it a draft and says why.
    assert "saved as a draft: a course is published once it has a lesson" in h.last_text()
    course = await db.scalar(select(Course))
    assert course is not None
    assert (course.title, course.tags, course.language) == ("SQL in 10 days", ["sql", "data"], "en")
    assert (course.price_minor, course.currency, course.stars_price) == (1999, "USD", 250)
    assert not course.published and course.protect_content
    cid = course.id
    await db.close()

    await h.send(f"/addlesson {cid}", OWNER)
    await h.send("Welcome! Today: SELECT.", OWNER)
    assert "added as number 1" in h.last_text()
    await h.send(f"/publish {cid}", OWNER)
    assert "is published" in h.last_text()
    course = await db.get(Course, cid)
    assert course is not None and course.published
    await db.close()
    await h.send(f"/addlesson {cid}", OWNER)
    photo = PhotoSize(file_id="AgACphoto", file_unique_id="u", width=10, height=10)
    await h.feed(message_update(None, OWNER, photo=[photo], caption="Joins diagram"))
    assert "added as number 2" in h.last_text()
    lessons = list(await db.scalars(select(Lesson).order_by(Lesson.position)))
    assert [(x.content_type, x.release_days) for x in lessons] == [("text", 0), ("photo", 1)]
    assert lessons[1].file_id == "AgACphoto" and lessons[1].caption == "Joins diagram"
    second = lessons[1].id
    await db.close()

    await h.send(f"/release {second} days 3", OWNER)
    assert "3 days after enrollment" in h.last_text()
    await h.send(f"/preview {cid} 1", OWNER)
    assert "1 of 2 lessons on day 1" in h.last_text()
    await h.send(f"/preview {cid} 3", OWNER)
    assert "2 of 2 lessons on day 3" in h.last_text()
    await h.send(f"/release {second} after", OWNER)
    assert "previous lesson is done" in h.last_text()
    await h.send(f"/release {second} at 2026-12-01 09:30", OWNER)
    assert "2026-12-01 09:30" in h.last_text()
    await h.send(f"/movelesson {second} up", OWNER)
    await h.send(f"/lessons {cid}", OWNER)
    listing = h.last_text()
    assert listing.index("Joins diagram") < listing.index("Welcome!")
    await h.send(f"/protect {cid} off", OWNER)
    await h.send(f"/editcourse {cid} price 5 EUR", OWNER)
    await h.send(f"/unpublish {cid}", OWNER)
    db.expire_all()
    course = await db.get(Course, cid)
    assert course is not None
    assert (course.protect_content, course.price_minor, course.currency) == (False, 500, "EUR")
    assert not course.published
    lesson = await db.get(Lesson, second)
    assert lesson is not None and lesson.release_rule == ReleaseRule.AT_DATE
    await db.close()
    await h.send(f"/dellesson {second}", OWNER)
    assert "deleted" in h.last_text()


async def test_rights_are_checked_on_every_call(h: Harness, db: AsyncSession) -> None:
    await new_course(h, publish=False)
    assert "draft" in h.last_text()
    cid = await db.scalar(select(Course.id))
    await db.close()
    stranger = tg_user(1001, "Ann")
    await h.send("/newcourse", stranger)
    assert "Only creators" in h.last_text()
    await h.send("/becomecreator", stranger)
    assert "creator now" in h.last_text()
    # A creator, but not of this course: every call says "not found" and changes nothing.
    for command in (
        f"/addlesson {cid}",
        f"/publish {cid}",
        f"/editcourse {cid} title Mine",
        f"/broadcast {cid}",
        f"/preview {cid} 1",
        f"/protect {cid} off",
    ):
        await h.send(command, stranger)
        assert "No such course" in h.last_text(), command
    db.expire_all()
    course = await db.get(Course, cid)
    assert course is not None and course.title == "SQL in 10 days" and not course.published


async def test_a_course_without_lessons_is_not_published(h: Harness, db: AsyncSession) -> None:
    await new_course(h, publish=False)
    cid = await db.scalar(select(Course.id))
    await db.close()
    await h.send(f"/publish {cid}", OWNER)
    assert f"Course #{cid} has no lessons yet, so it stays a draft" in h.last_text()
    assert f"/addlesson {cid}" in h.last_text()
    course = await db.get(Course, cid)
    assert course is not None and not course.published
    await db.close()
    # Unpublishing needs no lesson.
    await h.send(f"/unpublish {cid}", OWNER)
    assert "is unpublished" in h.last_text()


async def test_the_only_lesson_of_a_published_course_is_not_deleted(
    h: Harness, db: AsyncSession
) -> None:
    await new_course(h, publish=False)
    cid = await db.scalar(select(Course.id))
    await db.close()
    await h.send(f"/addlesson {cid}", OWNER)
    await h.send("The only lesson", OWNER)
    await h.send(f"/publish {cid}", OWNER)
    lesson_id = await db.scalar(select(Lesson.id).where(Lesson.course_id == cid))
    await db.close()
    await h.send(f"/dellesson {lesson_id}", OWNER)
    assert "only lesson of a published course" in h.last_text()
    assert await db.get(Lesson, lesson_id) is not None
    await db.close()
    # A draft may lose its last lesson.
    await h.send(f"/unpublish {cid}", OWNER)
    await h.send(f"/dellesson {lesson_id}", OWNER)
    assert "Lesson deleted." in h.last_text()
    assert await db.get(Lesson, lesson_id) is None


async def test_bad_input_in_the_conversation_is_asked_again(h: Harness) -> None:
    await h.send("/newcourse", OWNER)
    await h.send("T", OWNER)
    await h.send("D", OWNER)
    await h.send("-", OWNER)
    await h.click("中文", OWNER)
    await h.send("lots of money", OWNER)
    assert "could not read that price" in h.last_text()
    await h.send("0", OWNER)
    await h.send("many", OWNER)
    assert "whole number" in h.last_text()
    await h.send("/cancel", OWNER)
    assert "Cancelled" in h.last_text()


def labels(markup: object) -> list[str]:
    assert isinstance(markup, InlineKeyboardMarkup)
    return [b.text for row in markup.inline_keyboard for b in row]


def data_of(markup: object, label: str) -> str:
    assert isinstance(markup, InlineKeyboardMarkup)
    found = [b.callback_data for row in markup.inline_keyboard for b in row if b.text == label]
    assert found and found[0], (label, labels(markup))
    return found[0]


def alerts(h: Harness) -> list[str]:
    return [a.text or "" for a in h.session.of_type(AnswerCallbackQuery) if a.show_alert]


async def test_preview_sends_each_lesson_as_a_learner_gets_it_and_records_nothing(
    h: Harness, drip_app: App, db: AsyncSession
) -> None:
    await new_course(h)
    cid = await db.scalar(select(Course.id))
    assert cid is not None
    await db.close()
    await h.send(f"/addlesson {cid}", OWNER)
    await h.send("Welcome! Today: SELECT & JOIN.", OWNER)  # day 0
    await h.send(f"/addlesson {cid}", OWNER)
    photo = PhotoSize(file_id="AgACphoto", file_unique_id="u", width=10, height=10)
    await h.feed(message_update(None, OWNER, photo=[photo], caption="Joins diagram"))  # day 1
    await h.send(f"/addlesson {cid}", OWNER)
    document = Document(file_id="BQACdoc", file_unique_id="d")
    await h.feed(message_update(None, OWNER, document=document, caption="Cheat sheet"))
    third = await db.scalar(select(Lesson.id).where(Lesson.position == 3))
    await db.close()
    await h.send(f"/release {third} days 5", OWNER)

    # Day 1: the list, with a button for each lesson the learner has by then.
    await h.send(f"/preview {cid} 1", OWNER)
    assert "2 of 3 lessons on day 1" in h.last_text()
    listing = h.last_markup()
    assert labels(listing) == ["📖 1", "📖 2"]

    # Lesson 2 arrives as the learner's would: the photo by file_id, caption, protected;
    # preview navigation instead of Done and Next.
    h.session.clear()
    await h.press(data_of(listing, "📖 2"), OWNER)
    (sent,) = h.session.of_type(SendPhoto)
    assert sent.chat_id == OWNER.id and sent.photo == "AgACphoto"
    assert sent.caption is not None
    assert "Lesson 2 of 3" in sent.caption and "Joins diagram" in sent.caption
    assert sent.protect_content is True
    assert labels(sent.reply_markup) == ["◀ Previous", "☰ Day 1"]
    await h.press(data_of(sent.reply_markup, "◀ Previous"), OWNER)
    text = h.session.of_type(SendMessage)[-1]
    # The title is escaped once, like the body (not "&amp;amp;").
    assert text.text.endswith(
        "Lesson 1 of 3 · Welcome! Today: SELECT &amp; JOIN.\n\nWelcome! Today: SELECT &amp; JOIN."
    )
    assert text.protect_content is True
    assert labels(text.reply_markup) == ["☰ Day 1", "Next ▶"]
    await h.press(data_of(text.reply_markup, "☰ Day 1"), OWNER)
    assert "2 of 3 lessons on day 1" in h.last_text()

    # Lesson 3 is not there on day 1 (a forged button): refused, nothing sent. Day 5: it is.
    h.session.clear()
    await h.press(PreviewCB(course=cid, day=1, n=3).pack(), OWNER)
    assert h.session.of_type(SendDocument) == []
    assert any("does not have this lesson on day 1" in a for a in alerts(h))
    await h.press(PreviewCB(course=cid, day=5, n=3).pack(), OWNER)
    (doc,) = h.session.of_type(SendDocument)
    assert doc.document == "BQACdoc" and doc.caption and "Cheat sheet" in doc.caption
    assert labels(doc.reply_markup) == ["◀ Previous", "☰ Day 5"]

    # protect_content follows the course.
    await h.send(f"/protect {cid} off", OWNER)
    h.session.clear()
    await h.press(PreviewCB(course=cid, day=1, n=2).pack(), OWNER)
    (unprotected,) = h.session.of_type(SendPhoto)
    assert unprotected.protect_content is False

    # Another creator cannot preview this course.
    stranger = tg_user(1002, "Bo")
    await h.send("/becomecreator", stranger)
    h.session.clear()
    await h.press(PreviewCB(course=cid, day=1, n=2).pack(), stranger)
    assert h.session.of_type(SendPhoto) == [] and any("No such course" in a for a in alerts(h))

    # Nothing of the preview is a learner's: no enrollment, delivery or access.
    for model in (Enrollment, Delivery, Entitlement):
        assert await db.scalar(select(func.count()).select_from(model)) == 0, model
    await db.close()

    # And a real learner gets the very same message on day 1.
    ann = tg_user(1001, "Ann")
    await h.send("/start", ann)
    clock = drip_app.scheduler.clock
    assert isinstance(clock, ManualClock)
    await access.grant(db, ann.id, ProductKind.COURSE, cid, days=None, now=clock.now())
    await db.commit()
    await db.close()
    clock.advance(days=1)
    await drip_app.scheduler.drain()
    (learners,) = [p for p in h.session.of_type(SendPhoto) if p.chat_id == ann.id]
    assert (learners.photo, learners.caption, learners.protect_content) == (
        unprotected.photo,
        unprotected.caption,
        unprotected.protect_content,
    )


async def test_course_commands_say_why_they_cannot_go_on(h: Harness) -> None:
    nobody = tg_user(1003, "Cy")
    for command in ("/addlesson 1", "/broadcast 1", "/lessons 1", "/courses", "/preview 1 1"):
        await h.send(command, nobody)
        assert "Only creators" in h.last_text(), command
    for command in ("/addlesson", "/lessons"):
        await h.send(command, OWNER)
        assert h.last_text() == f"Usage: {command} <i>course id</i>", command
        await h.send(f"{command} 999", OWNER)
        assert "No such course" in h.last_text(), command
