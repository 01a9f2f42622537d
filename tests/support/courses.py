"""Builders for the learning tests: a creator's published course with its lessons, and a
learner enrolled in it through the real Dispatcher."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.types import User as TgUser
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Creator, Lesson, ProductKind, ReleaseRule, User
from bot.scheduler.clock import ManualClock
from bot.services import access
from tests.support.updates import Harness, tg_user

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
OWNER = tg_user(7, "Olga")  # ADMIN_IDS=7


async def drip_course(
    db: AsyncSession,
    rules: list[tuple[str, int]],
    *,
    title: str = "Drip 101",
    owner_id: int = OWNER.id,
    owner_name: str = "Olga",
    referral_code: str = "olga",
    lesson_title: str = "Part {}",
    lesson_text: str = "Body {}",
) -> int:
    """A published course by a creator made for it, one lesson per (release rule, days),
    titled and written lesson_title / lesson_text with the lesson's position; committed."""
    db.add(User(id=owner_id, first_name=owner_name, referral_code=referral_code))
    await db.flush()
    creator = Creator(user_id=owner_id, display_name=owner_name)
    db.add(creator)
    await db.flush()
    course = Course(creator_id=creator.id, title=title, published=True)
    db.add(course)
    await db.flush()
    for i, (rule, days) in enumerate(rules, start=1):
        db.add(
            Lesson(
                course_id=course.id,
                position=i,
                title=lesson_title.format(i),
                text=lesson_text.format(i),
                release_rule=rule,
                release_days=days,
            )
        )
    await db.commit()
    return course.id


async def course_with_lessons(
    db: AsyncSession, rules: list[tuple[str, int]], title: str = "Drip 101"
) -> int:
    """Olga's course (drip_course), and the test's session closed: on SQLite the bot's own
    session needs the one pooled connection."""
    course_id = await drip_course(db, rules, title=title)
    await db.close()
    return course_id


def day_zero_lessons(count: int) -> list[tuple[str, int]]:
    """count lessons all released on enrollment (a Lesson's defaults)."""
    return [(ReleaseRule.AFTER_DAYS, 0)] * count


async def enroll(
    h: Harness, db: AsyncSession, user: TgUser, course_id: int, at: ManualClock | datetime
) -> None:
    """The learner starts the bot (registered as a real learner is) and is granted the
    course at `at` (the clock's now, or that moment); committed, the session closed."""
    now = at.now() if isinstance(at, ManualClock) else at
    await h.send("/start", user)
    await access.grant(db, user.id, ProductKind.COURSE, course_id, days=None, now=now)
    await db.commit()
    await db.close()
