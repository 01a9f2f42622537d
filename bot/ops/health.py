"""What /healthz and the scheduler gauges of /metrics report: can this process reach the
database and Redis, and how far behind is the scheduler of the whole deployment.

The lag is read from the database, not from this process's worker: a webhook worker
with SCHEDULER_ENABLED=false reports the same number as the scheduler worker itself, and
a scheduler that died shows as a growing lag everywhere. It counts only what a worker
would claim now (not paused courses, not learners who blocked the bot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Delivery, DeliveryStatus, Enrollment, Job, JobStatus, User
from bot.ops import metrics

TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Backlog:
    deliveries: int
    jobs: int
    lag_seconds: float


async def backlog(session: AsyncSession, now: datetime, job_kinds: list[str]) -> Backlog:
    """Rows due now and how late the oldest of them is."""
    due_delivery = and_(
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.due_at <= now,
        Enrollment.paused_at.is_(None),
        User.is_blocked.is_(False),
    )
    row = (
        await session.execute(
            select(func.count(Delivery.id), func.min(Delivery.due_at))
            .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
            .join(User, User.id == Delivery.user_id)
            .where(due_delivery)
        )
    ).one()
    jobs = (
        await session.execute(
            select(func.count(Job.id), func.min(Job.run_at)).where(
                Job.status == JobStatus.PENDING, Job.run_at <= now, Job.kind.in_(job_kinds)
            )
        )
    ).one()
    oldest = [t for t in (row[1], jobs[1]) if t is not None]
    lag = max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0
    return Backlog(int(row[0] or 0), int(jobs[0] or 0), lag)


@dataclass
class HealthProbe:
    sessionmaker: async_sessionmaker[AsyncSession]
    now: Callable[[], datetime]
    job_kinds: list[str]
    max_lag: float
    # None: this deployment has no Redis.
    redis_ping: Callable[[], Awaitable[Any]] | None = None
    checks: dict[str, Any] = field(default_factory=dict)

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, report). Each part is bounded by TIMEOUT: a hung database is a
        failed check, not a hung health endpoint."""
        report: dict[str, Any] = {}
        healthy = True
        try:
            async with asyncio.timeout(TIMEOUT), self.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
                found = await backlog(session, self.now(), self.job_kinds)
            report["database"] = "ok"
            report["scheduler"] = {
                "due_deliveries": found.deliveries,
                "due_jobs": found.jobs,
                "lag_seconds": round(found.lag_seconds, 1),
                "max_lag_seconds": self.max_lag,
            }
            update_gauges(found)
            if found.lag_seconds > self.max_lag:
                healthy = False
                report["scheduler"]["status"] = "behind"
            else:
                report["scheduler"]["status"] = "ok"
        except Exception as exc:
            healthy = False
            report["database"] = f"error: {type(exc).__name__}"
        if self.redis_ping is None:
            report["redis"] = "not configured"
        else:
            try:
                async with asyncio.timeout(TIMEOUT):
                    await self.redis_ping()
                report["redis"] = "ok"
            except Exception as exc:
                healthy = False
                report["redis"] = f"error: {type(exc).__name__}"
        report["status"] = "ok" if healthy else "fail"
        return healthy, report

    async def refresh_gauges(self) -> None:
        """Before /metrics is rendered: the backlog gauges as of now (skipped on error)."""
        try:
            async with asyncio.timeout(TIMEOUT), self.sessionmaker() as session:
                update_gauges(await backlog(session, self.now(), self.job_kinds))
        except Exception:
            return


def update_gauges(found: Backlog) -> None:
    metrics.SCHEDULER_DUE.labels("deliveries").set(found.deliveries)
    metrics.SCHEDULER_DUE.labels("jobs").set(found.jobs)
    metrics.SCHEDULER_LAG.set(found.lag_seconds)
