"""A gentle nudge to drip learners at risk, through the scheduler's rate-limited sender.

At most one nudge per learner per course per NUDGE_EVERY (stats_nudges keeps the last
one, claimed in the transaction that queues the job), and never in the learner's quiet
hours: the job waits until they end, as lessons do. Access follows money: a learner who
lost the course since the press gets nothing. Every nudge carries the way to stop it: a
button that pauses the course (no lessons, so no more nudges, until the learner resumes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.dashboard import AtRisk
from bot.keyboards.learning import EnrollmentAction, EnrollmentCB
from bot.models import Enrollment, Job, JobStatus, Nudge, ProductKind, User
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Button, Outgoing
from bot.services import access
from bot.services.drip import Prefs, in_quiet_hours, out_of_quiet_hours

log = logging.getLogger(__name__)

KIND = "stats.nudge"
NUDGE_EVERY = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class NudgeResult:
    queued: int
    recent: int  # nudged less than NUDGE_EVERY ago: left alone


async def queue_nudges(
    session: AsyncSession,
    learners: list[AtRisk],
    text_for: Callable[[User, AtRisk], tuple[str, str]],
    now: datetime,
) -> NudgeResult:
    queued = recent = 0
    for learner in learners:
        last = await session.scalar(
            select(Nudge).where(
                Nudge.user_id == learner.user_id, Nudge.course_id == learner.course_id
            )
        )
        if last is not None and last.sent_at > now - NUDGE_EVERY:
            recent += 1
            continue
        user = await session.get(User, learner.user_id)
        if user is None:
            continue
        if last is None:
            session.add(Nudge(user_id=learner.user_id, course_id=learner.course_id, sent_at=now))
        else:
            last.sent_at = now
        text, pause = text_for(user, learner)
        session.add(
            Job(
                kind=KIND,
                payload={
                    "chat_id": learner.user_id,
                    "course_id": learner.course_id,
                    "text": text,
                    "pause": pause,  # the label of the button that stops it
                },
                run_at=now,
                status=JobStatus.PENDING,
                created_at=now,
                updated_at=now,
            )
        )
        queued += 1
    await session.flush()
    return NudgeResult(queued, recent)


def nudge_message(payload: dict[str, object], course_id: int) -> Outgoing:
    pause = EnrollmentCB(action=EnrollmentAction.PAUSE, id=course_id).pack()
    label = str(payload.get("pause") or "⏸")
    return Outgoing(text=str(payload["text"]), buttons=((Button(label, pause),),))


async def run(ctx: JobContext, job: Job) -> datetime | None:
    payload = job.payload
    chat_id, course_id = int(payload["chat_id"]), int(payload["course_id"])
    now = ctx.clock.now()
    user = await ctx.session.get(User, chat_id)
    if user is None or not await access.has_access(
        ctx.session, chat_id, ProductKind.COURSE, course_id, now
    ):
        return None
    paused_or_done = await ctx.session.scalar(
        select(Enrollment.id).where(
            Enrollment.user_id == chat_id,
            Enrollment.course_id == course_id,
            (Enrollment.paused_at.is_not(None)) | (Enrollment.completed_at.is_not(None)),
        )
    )
    if paused_or_done is not None:
        return None  # they stopped it (or finished) since the press
    prefs = Prefs.of(user)
    if in_quiet_hours(now, prefs):
        return out_of_quiet_hours(now, prefs)
    try:
        await ctx.sender.send(chat_id, nudge_message(payload, course_id))
    except Unreachable as exc:
        user.is_blocked = True
        user.blocked_at = now
        job.last_error = f"blocked: {exc}"[:500]
    except (ChatNotFound, Rejected) as exc:
        log.info("nudge to %s dropped: %s", chat_id, exc)
        job.last_error = str(exc)[:500]
    return None


def register(registry: JobRegistry) -> None:
    registry.register(KIND, run)
