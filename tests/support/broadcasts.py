"""Builders for the broadcast tests: a course's learners enrolled through the real
Dispatcher, and a broadcast written (and sent) the way a creator does it."""

from __future__ import annotations

from collections.abc import Iterable

from aiogram.types import User
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import ProductKind
from bot.scheduler.clock import ManualClock
from bot.services import access
from tests.support.updates import Harness


async def enroll_all(
    h: Harness, db: AsyncSession, clock: ManualClock, course_id: int, learners: Iterable[User]
) -> None:
    """Each learner starts the bot and is granted the course; their first lessons go out
    now, so that a broadcast's sends are the only ones left to count."""
    learners = list(learners)
    for user in learners:
        await h.send("/start", user)
    for user in learners:
        await access.grant(db, user.id, ProductKind.COURSE, course_id, days=None, now=clock.now())
    await db.commit()
    await db.close()  # SQLite: one pooled connection, the worker needs it
    await h.app.scheduler.drain()


async def draft(
    h: Harness, creator: User, course_id: int | str, text: str, segment: str = "Learners"
) -> str:
    """/broadcast <course>, the segment button, the message: returns the confirmation."""
    await h.send(f"/broadcast {course_id}", creator)
    await h.click(segment, creator)
    await h.send(text, creator)
    return h.last_text()


async def send_broadcast(
    h: Harness, creator: User, course_id: int | str, text: str, segment: str = "Learners"
) -> None:
    """/broadcast, the segment button, the message, then Send."""
    await draft(h, creator, course_id, text, segment)
    await h.click("Send", creator)
