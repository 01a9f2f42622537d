"""The housekeeping ticker expires abandoned orders and reschedules itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Job, Order, OrderStatus
from bot.payments import housekeeping
from bot.scheduler.clock import ManualClock
from bot.scheduler.jobs import JobContext
from bot.services.users import TelegramProfile, ensure_creator, upsert_user


async def test_abandoned_orders_expire_and_the_ticker_repeats(db: AsyncSession) -> None:
    clock = ManualClock()
    now = clock.now()
    user, _ = await upsert_user(db, TelegramProfile(id=9, first_name="Ann"), now=now)
    creator = await ensure_creator(db, user)
    course = Course(creator_id=creator.id, title="C", published=True)
    db.add(course)
    await db.flush()

    def order(ref: str, expires_in: timedelta) -> Order:
        return Order(
            public_ref=ref,
            user_id=user.id,
            creator_id=creator.id,
            product_kind="course",
            product_id=course.id,
            method="stars",
            currency="XTR",
            list_amount_minor=100,
            amount_minor=100,
            expires_at=now + expires_in,
        )

    db.add_all([order("old", timedelta(minutes=-1)), order("fresh", timedelta(minutes=30))])
    await housekeeping.ensure_scheduled(db, now)
    await housekeeping.ensure_scheduled(db, now)  # idempotent across restarts
    assert await db.scalar(select(func.count(Job.id)).where(Job.kind == housekeeping.KIND)) == 1

    ctx = JobContext(session=db, sender=cast(Any, None), clock=clock, renderer=cast(Any, None))
    job = await db.scalar(select(Job).where(Job.kind == housekeeping.KIND))
    assert job is not None
    again = await housekeeping.run(ctx, job)
    assert again == now + housekeeping.INTERVAL
    statuses = dict((await db.execute(select(Order.public_ref, Order.status))).tuples().all())
    assert statuses == {"old": OrderStatus.EXPIRED, "fresh": OrderStatus.PENDING}
