"""Values no later step can compute are refused where they are typed, with the limit.

Today's failure: `/release … at 9999-12-31 23:00`, `days=99999999` or `price=1e308` were
stored, and every later purchase charged the learner and then failed in the grant with
an OverflowError. Each value gets its reply here, and nothing of it is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot import parsing
from bot.app import App, build_app
from bot.config import Settings
from bot.models import Coupon, Course, Lesson, Plan
from bot.payments.coupons import CouponSpecError, parse_spec
from bot.scheduler.clock import ManualClock
from bot.services import authoring
from bot.services.authoring import CourseDraft, LessonContent, parse_price, parse_release
from bot.services.groups import parse_plan_spec
from bot.services.users import get_creator
from tests.support.telegram_rules import ValidatingSession
from tests.support.updates import Harness, settle, tg_user

CREATOR = tg_user(2001, "Cleo")


@pytest.fixture
async def h(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Harness]:
    app: App = build_app(settings, session=ValidatingSession(), engine=engine, clock=ManualClock())
    yield Harness(app)
    assert not app.bot.session.violations  # type: ignore[attr-defined]
    await settle(app)


async def course_and_lesson(h: Harness, db: AsyncSession) -> tuple[int, int]:
    await h.send("/becomecreator", CREATOR)
    creator = await get_creator(db, CREATOR.id)
    assert creator is not None
    draft = CourseDraft(title="Bounds", price_minor=1999, stars_price=250)
    course = await authoring.create_course(db, creator, draft)
    lesson = await authoring.add_lesson(db, creator, course.id, LessonContent("text", text="One"))
    assert lesson is not None
    assert await authoring.set_published(db, creator, course.id, True)
    ids = course.id, lesson.id
    await db.commit()
    await db.close()
    return ids


async def test_release_at_a_far_date_is_refused_with_the_limit(
    h: Harness, db: AsyncSession
) -> None:
    _course, lesson = await course_and_lesson(h, db)
    await h.send(f"/release {lesson} at 9999-12-31 23:00", CREATOR)
    assert "Dates: 2000 to 2099" in h.last_text()
    assert await db.scalar(select(Lesson.release_at).where(Lesson.id == lesson)) is None
    await h.send(f"/release {lesson} at 2099-12-31 23:59", CREATOR)
    assert "is now released on 2099-12-31 23:59" in h.last_text()


async def test_plan_days_beyond_ten_years_are_refused(h: Harness, db: AsyncSession) -> None:
    await course_and_lesson(h, db)
    await h.send("/plan new Club stars=10 days=99999999", CREATOR)
    assert "days and trial up to 3650" in h.last_text()
    assert await db.scalar(select(func.count(Plan.id))) == 0


async def test_plan_price_1e308_is_refused(h: Harness, db: AsyncSession) -> None:
    await course_and_lesson(h, db)
    for price in ("1e308", "inf", "nan", "100001"):
        await h.send(f"/plan new Club stars=10 days=30 price={price}", CREATOR)
        assert "price up to 100,000" in h.last_text(), price
    assert await db.scalar(select(func.count(Plan.id))) == 0


async def test_coupon_days_beyond_ten_years_are_refused(h: Harness, db: AsyncSession) -> None:
    await course_and_lesson(h, db)
    await h.send("/coupon add SPRING 20% days=99999999", CREATOR)
    assert h.last_text() == "days=N: from 1 to 3650 days."
    await h.send("/coupon add SPRING 20% uses=99999999", CREATOR)
    assert h.last_text() == "uses=N: from 1 to 1,000,000."
    await h.send("/coupon add SPRING 1e308USD", CREATOR)
    assert await db.scalar(select(func.count(Coupon.id))) == 0
    await h.send("/coupon add SPRING 20% days=3650", CREATOR)
    assert "Promo code created" in h.last_text()


async def test_preview_of_a_day_beyond_ten_years_is_refused(h: Harness, db: AsyncSession) -> None:
    course, _lesson = await course_and_lesson(h, db)
    await h.send(f"/preview {course} 99999999", CREATOR)
    assert "(day 0 to 3650)" in h.last_text()
    await h.send(f"/preview {course} 3650", CREATOR)
    assert "1 of 1 lesson on day 3650" in h.last_text()


async def test_course_price_1e308_is_refused_in_editcourse_and_newcourse(
    h: Harness, db: AsyncSession
) -> None:
    course, _lesson = await course_and_lesson(h, db)
    for price in ("1e308 USD", "NaN", "Infinity EUR", "-1 USD"):
        await h.send(f"/editcourse {course} price {price}", CREATOR)
        assert "at most 100,000 in its currency" in h.last_text(), price
    await h.send(f"/editcourse {course} stars 99999999", CREATOR)
    assert "from 0 to 100,000" in h.last_text()
    assert await db.scalar(select(Course.price_minor).where(Course.id == course)) == 1999
    await db.close()

    await h.send("/newcourse", CREATOR)
    await h.send("Overflow", CREATOR)
    await h.send("About overflow.", CREATOR)
    await h.send("-", CREATOR)
    await h.click("English", CREATOR)
    await h.send("1e308 USD", CREATOR)
    assert "at most 100,000 in its currency" in h.last_text()
    await h.send("19.99 USD", CREATOR)
    await h.send("1e308", CREATOR)
    assert "from 0 to 100,000" in h.last_text()


@pytest.mark.parametrize(
    "text", ["1e308", "NaN", "sNaN", "Infinity", "-Infinity", "1E+999999999", "100000.01", "²"]
)
def test_parse_price_refuses_what_is_no_price(text: str) -> None:
    assert parse_price(text) is None
    assert parse_price(f"{text} USD") is None


def test_parsers_refuse_values_that_cannot_be_computed() -> None:
    assert parse_release("at 9999-12-31 23:00") is None
    assert parse_release("at 1970-01-01") is None
    assert parse_release("days 3651") is None and parse_release("days ²") is None
    assert parse_release("days 3650") is not None
    for spec in ("X days=99999999", "X trial=99999", "X stars=9999999999", "X price=1e308"):
        assert parse_plan_spec(spec) is None, spec
    for args in (["CODE", "20%", "days=99999999"], ["CODE", "20%", "uses=0"], ["C", "²%"]):
        with pytest.raises(CouponSpecError):
            parse_spec(args)
    assert parsing.record_id("99999999999999999999") is None
    assert parsing.record_id("²") is None and parsing.record_id("-5") is None
    assert parsing.telegram_id("-1001234567890") == -1001234567890
