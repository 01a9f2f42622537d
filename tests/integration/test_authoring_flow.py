"""Creators through the real Dispatcher: /newcourse, lessons, release rules, preview, rights."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram.types import PhotoSize
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.models import Course, Lesson, ReleaseRule
from bot.scheduler.clock import ManualClock
from tests.support.recording import RecordingSession
from tests.support.updates import Harness, message_update, tg_user

OWNER = tg_user(7, "Olga")  # ADMIN_IDS=7 in the test settings


@pytest.fixture
async def drip_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[App]:
    app = build_app(settings, session=RecordingSession(), engine=engine, clock=ManualClock())
    yield app
    await app.events.flush(app.sessionmaker)
    await app.search.close()


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
    assert "is published" in h.last_text()
    course = await db.scalar(select(Course))
    assert course is not None
    assert (course.title, course.tags, course.language) == ("SQL in 10 days", ["sql", "data"], "en")
    assert (course.price_minor, course.currency, course.stars_price) == (1999, "USD", 250)
    assert course.published and course.protect_content
    cid = course.id
    await db.close()

    await h.send(f"/addlesson {cid}", OWNER)
    await h.send("Welcome! Today: SELECT.", OWNER)
    assert "added as number 1" in h.last_text()
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
