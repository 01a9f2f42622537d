"""`python -m bot seed --demo`: load the demo catalog. Idempotent by (creator, title)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import ContentType, Course, Lesson, ReleaseRule
from bot.services.seed_data import COURSES, CREATORS
from bot.services.users import TelegramProfile, ensure_creator, upsert_user


async def seed_demo(session: AsyncSession) -> int:
    """Create whatever of the demo catalog is missing; return how many courses were added."""
    added = 0
    for user_id, name in CREATORS:
        user, _ = await upsert_user(session, TelegramProfile(id=user_id, first_name=name))
        creator = await ensure_creator(session, user, display_name=name)
        existing = set(
            await session.scalars(select(Course.title).where(Course.creator_id == creator.id))
        )
        for title, description, tags, language, cents, stars, lessons in COURSES[user_id]:
            if title in existing:
                continue
            course = Course(
                creator_id=creator.id,
                title=title,
                description=description,
                tags=list(tags),
                language=language,
                price_minor=cents,
                currency="USD",
                stars_price=stars,
                published=True,
            )
            session.add(course)
            await session.flush()
            session.add_all(
                Lesson(
                    course_id=course.id,
                    position=i + 1,
                    title=lesson_title,
                    content_type=ContentType.TEXT,
                    text=f"{title}\n\n{i + 1}. {lesson_title}",
                    release_rule=ReleaseRule.AFTER_DAYS,
                    release_days=i,
                )
                for i, lesson_title in enumerate(lessons)
            )
            added += 1
    return added
