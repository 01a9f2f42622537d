"""A scheduler job that expires pending orders nobody paid, every few minutes, and
gives their reserved coupon uses back.

Without it an abandoned order would stay pending until someone tried to pay it; the
pre-checkout re-check refuses it either way, but creators' reports should not count it,
and a one-use code would stay held by an invoice nobody pays.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Job
from bot.payments.coupons import release_expired
from bot.payments.orders import expire_stale
from bot.scheduler.jobs import JobContext, JobRegistry

KIND = "orders_expire"
INTERVAL = timedelta(minutes=10)


async def run(ctx: JobContext, job: Job) -> datetime:
    await expire_stale(ctx.session, ctx.clock.now())
    await release_expired(ctx.session, ctx.clock.now())
    return ctx.clock.now() + INTERVAL  # the same row runs again: one ticker, forever


def register(registry: JobRegistry) -> None:
    registry.register(KIND, run)


async def ensure_scheduled(session: AsyncSession, now: datetime) -> None:
    """Create the ticker once; every start after that finds it by its dedupe key."""
    if await session.scalar(select(Job.id).where(Job.dedupe_key == KIND)) is None:
        session.add(Job(kind=KIND, dedupe_key=KIND, payload={}, run_at=now))
        await session.flush()
