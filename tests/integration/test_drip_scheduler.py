"""Drip end to end below the chat: grant → deliveries → worker → sender, with a moving clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db import create_sessionmaker
from bot.models import (
    Delivery,
    DeliveryStatus,
    Enrollment,
    Lesson,
    ProductKind,
    ReleaseRule,
    User,
)
from bot.scheduler.clock import ManualClock
from bot.scheduler.errors import ChatNotFound, Transient, Unreachable
from bot.scheduler.memory import MemorySender
from bot.scheduler.sender import RateLimitedSender
from bot.scheduler.worker import Scheduler, WorkerConfig
from bot.services import access, drip
from bot.services.users import TelegramProfile, upsert_user
from tests.support.courses import drip_course

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def memory(clock: ManualClock) -> MemorySender:
    return MemorySender(clock)


class _Worker(Scheduler):
    """Closes the test's session first: SQLite has one pooled connection, the worker needs it."""

    db: AsyncSession

    async def drain(self, rounds: int = 100) -> int:
        await self.db.close()
        return await super().drain(rounds)


@pytest.fixture
async def worker(
    engine: AsyncEngine, db: AsyncSession, clock: ManualClock, memory: MemorySender
) -> AsyncIterator[Scheduler]:
    drip.install("UTC")
    sender = RateLimitedSender(memory, per_second=30, chat_interval=1.0, clock=clock)
    worker = _Worker(
        create_sessionmaker(engine),
        sender,
        clock=clock,
        config=WorkerConfig(batch_size=20, retry_base=60),
    )
    worker.db = db
    yield worker


async def make_course(db: AsyncSession, rules: list[tuple[str, int]], owner_id: int = 500) -> int:
    return await drip_course(
        db,
        rules,
        owner_id=owner_id,
        owner_name="Cat",
        referral_code=f"r{owner_id}",
        lesson_title="L{}",
        lesson_text="lesson {} body",
    )


async def learner(db: AsyncSession, user_id: int, tz: str | None = None) -> User:
    user, _ = await upsert_user(db, TelegramProfile(id=user_id, first_name=f"U{user_id}"), now=T0)
    user.timezone = tz
    await db.commit()
    return user


async def grant(db: AsyncSession, user_id: int, course: int, now: datetime) -> None:
    await access.grant(db, user_id, ProductKind.COURSE, course, days=None, now=now)
    await db.commit()


async def statuses(db: AsyncSession, user_id: int) -> list[str]:
    db.expire_all()
    rows = await db.scalars(
        select(Delivery).where(Delivery.user_id == user_id).order_by(Delivery.lesson_id)
    )
    out = [r.status for r in rows]
    await db.close()  # SQLite: one pooled connection, the worker needs it
    return out


DAYS = ReleaseRule.AFTER_DAYS


async def test_lesson_one_at_once_then_by_days(
    db: AsyncSession, worker: Scheduler, memory: MemorySender, clock: ManualClock
) -> None:
    course = await make_course(db, [(DAYS, 0), (DAYS, 1), (DAYS, 3)])
    await learner(db, 1)
    await grant(db, 1, course, clock.now())
    assert await worker.drain() == 1
    assert len(memory.to(1)) == 1
    assert "Lesson 1 of 3" in memory.texts(1)[0] and "lesson 1 body" in memory.texts(1)[0]
    assert memory.to(1)[0].protect_content is True
    clock.advance(hours=23)
    assert await worker.drain() == 0
    clock.advance(hours=1)
    assert await worker.drain() == 1
    assert "Lesson 2 of 3" in memory.texts(1)[1]
    assert await statuses(db, 1) == ["sent", "sent", "pending"]
    clock.advance(days=3)
    await worker.drain()
    assert len(memory.to(1)) == 3
    row = await db.scalar(select(Delivery).where(Delivery.user_id == 1).limit(1))
    assert row is not None and row.message_id is not None and row.sent_at is not None


async def test_quiet_hours_in_the_learners_timezone(
    db: AsyncSession, worker: Scheduler, memory: MemorySender, clock: ManualClock
) -> None:
    course = await make_course(db, [(DAYS, 0), (DAYS, 1)])
    # 10:00 UTC is 23:00 in Auckland (UTC+13 in March): inside the default 22:00-08:00.
    await learner(db, 2, tz="Pacific/Auckland")
    await grant(db, 2, course, clock.now())
    assert await worker.drain() == 0
    row = await db.scalar(select(Delivery).where(Delivery.user_id == 2).limit(1))
    assert row is not None
    assert row.due_at == datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # 08:00 local
    clock.set(datetime(2026, 3, 2, 18, 59, tzinfo=UTC))
    assert await worker.drain() == 0
    clock.advance(minutes=1)
    assert await worker.drain() == 1
    # A backlog that comes due at night waits for the morning even if due long ago.
    user = await db.get(User, 2)
    assert user is not None
    clock.set(datetime(2026, 3, 4, 10, 0, tzinfo=UTC))  # 23:00 local, lesson 2 overdue
    assert await worker.drain() == 1  # claimed, found quiet, put back
    assert len(memory.to(2)) == 1
    clock.set(datetime(2026, 3, 4, 19, 0, tzinfo=UTC))
    await worker.drain()
    assert len(memory.to(2)) == 2


async def test_blocked_learner_pauses_then_resumes(
    db: AsyncSession, worker: Scheduler, memory: MemorySender, clock: ManualClock
) -> None:
    course = await make_course(db, [(DAYS, 0), (DAYS, 1)])
    await learner(db, 3)
    memory.fail[3].append(Unreachable("Forbidden: bot was blocked by the user"))
    await grant(db, 3, course, clock.now())
    await worker.drain()
    db.expire_all()
    user = await db.get(User, 3)
    assert user is not None and user.is_blocked
    assert await statuses(db, 3) == ["pending", "pending"]
    clock.advance(days=2)
    assert await worker.drain() == 0  # nothing is claimed while blocked
    assert memory.to(3) == []
    # They write to the bot again: upsert_user clears the flag, both lessons go out.
    await upsert_user(db, TelegramProfile(id=3, first_name="U3"), now=clock.now())
    await db.commit()
    await worker.drain()
    assert [t.split("\n")[1] for t in memory.texts(3)] == [
        "Lesson 1 of 2 · L1",
        "Lesson 2 of 2 · L2",
    ]


async def test_chat_not_found_is_skipped_and_network_errors_retry(
    db: AsyncSession, worker: Scheduler, memory: MemorySender, clock: ManualClock
) -> None:
    course = await make_course(db, [(DAYS, 0)])
    await learner(db, 4)
    await learner(db, 5)
    memory.fail[4].append(ChatNotFound("Bad Request: chat not found"))
    memory.fail[5].extend([Transient("connection reset")] * 4)  # outlasts the sender's retries
    await grant(db, 4, course, clock.now())
    await grant(db, 5, course, clock.now())
    await worker.drain()
    assert await statuses(db, 4) == ["skipped"]
    assert await statuses(db, 5) == ["pending"]
    clock.advance(minutes=2)
    await worker.drain()
    assert await statuses(db, 5) == ["sent"]
    assert len(memory.to(5)) == 1


async def test_after_previous_waits_for_done_and_pause_resume(
    db: AsyncSession, worker: Scheduler, memory: MemorySender, clock: ManualClock
) -> None:
    course = await make_course(db, [(DAYS, 0), (ReleaseRule.AFTER_PREVIOUS, 0), (DAYS, 5)])
    await learner(db, 6)
    await grant(db, 6, course, clock.now())
    await worker.drain()
    assert await statuses(db, 6) == ["sent"]  # lesson 2 has no date until 1 is done
    first = await db.scalar(select(Delivery).where(Delivery.user_id == 6))
    assert first is not None
    result = await drip.mark_done(db, 6, first.id, clock.now())
    await db.commit()
    assert result.ok and result.newly_done and result.next_due == clock.now()
    clock.advance(seconds=1)
    await worker.drain()
    assert len(memory.to(6)) == 2
    # A forged id (someone else's delivery) does nothing.
    assert not (await drip.mark_done(db, 7, first.id, clock.now())).ok

    assert await drip.pause(db, 6, course, clock.now())
    await db.commit()
    clock.advance(days=10)
    assert await worker.drain() == 0
    assert await drip.resume(db, 6, course, clock.now())
    await db.commit()
    # Paused for 10 days: day 5 now means 5 days after enrollment plus the pause.
    enrollment = await db.scalar(select(Enrollment).where(Enrollment.user_id == 6))
    assert enrollment is not None and enrollment.started_at == T0 + timedelta(days=10)
    progress = await drip.progress(db, 6)
    p = progress[course]
    assert (p.total, p.delivered, p.done, p.paused) == (3, 2, 1, False)
    assert p.next_at is not None and p.next_at > clock.now()
    clock.set(p.next_at)
    await worker.drain()
    assert len(memory.to(6)) == 3


async def test_schedule_edit_applies_to_future_lessons_only(
    db: AsyncSession, worker: Scheduler, memory: MemorySender, clock: ManualClock
) -> None:
    course = await make_course(db, [(DAYS, 0), (DAYS, 7), (DAYS, 14)])
    for uid in (8, 9):
        await learner(db, uid)
        await grant(db, uid, course, clock.now())
    await worker.drain()
    lessons = list(await db.scalars(select(Lesson).order_by(Lesson.position)))
    lessons[0].release_days = 3  # already delivered: must not be sent again
    lessons[1].release_days = 1
    await db.commit()
    await drip.reschedule_course(db, course, clock.now())
    await db.commit()
    clock.advance(days=1)
    await worker.drain()
    for uid in (8, 9):
        assert len(memory.to(uid)) == 2
        assert "Lesson 2 of 3" in memory.texts(uid)[1]


async def test_a_crashed_claim_is_resumed_after_restart(
    db: AsyncSession, engine: AsyncEngine, clock: ManualClock, memory: MemorySender
) -> None:
    drip.install("UTC")
    course = await make_course(db, [(DAYS, 0)])
    await learner(db, 10)
    await grant(db, 10, course, clock.now())
    sender = RateLimitedSender(memory, clock=clock)
    await db.close()
    first = Scheduler(create_sessionmaker(engine), sender, clock=clock, single_worker=False)
    async with first.sessionmaker() as session:
        assert await first._claim_deliveries(session, clock.now())  # claimed, then "killed"
    assert await statuses(db, 10) == [DeliveryStatus.SENDING]
    # Another worker does not touch it while the lease holds, and takes it after.
    second = Scheduler(create_sessionmaker(engine), sender, clock=clock, single_worker=False)
    await db.close()
    assert await second.drain() == 0
    clock.advance(seconds=61)
    assert await second.drain() == 1
    assert len(memory.to(10)) == 1


async def test_two_workers_share_the_work_without_duplicates(
    db: AsyncSession, engine: AsyncEngine, clock: ManualClock
) -> None:
    drip.install("UTC")
    course = await make_course(db, [(DAYS, 0)])
    for uid in range(100, 160):
        await learner(db, uid)
        await grant(db, uid, course, clock.now())
    await db.close()
    memory = MemorySender(clock)
    workers = [
        Scheduler(
            create_sessionmaker(engine),
            RateLimitedSender(memory, per_second=1000, clock=clock),
            clock=clock,
            config=WorkerConfig(batch_size=7),
            single_worker=False,
        )
        for _ in range(2)
    ]

    await asyncio.gather(*(w.drain() for w in workers))
    chats = sorted(s.chat_id for s in memory.sent)
    assert chats == list(range(100, 160))


async def test_revoke_stops_future_lessons_and_a_new_grant_brings_them_back(
    db: AsyncSession, worker: Scheduler, memory: MemorySender, clock: ManualClock
) -> None:
    course = await make_course(db, [(DAYS, 0), (DAYS, 1)])
    await learner(db, 11)
    await grant(db, 11, course, clock.now())
    await worker.drain()
    await access.revoke(db, 11, ProductKind.COURSE, course, now=clock.now())
    await db.commit()
    assert await statuses(db, 11) == ["sent", "skipped"]
    clock.advance(days=2)
    assert await worker.drain() == 0
    await grant(db, 11, course, clock.now())
    assert await statuses(db, 11) == ["sent", "pending"]
    await worker.drain()
    assert len(memory.to(11)) == 2
