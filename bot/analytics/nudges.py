"""A gentle nudge to drip learners at risk, through the scheduler's rate-limited sender.

Two ways in, one record: the creator's press (at most one per NUDGE_EVERY) and the
automatic sweep (AUTO_KIND, every SWEEP_EVERY: at most one per AUTO_EVERY, on courses
whose creator did not switch it off with /nudges). Both read and write the same
stats_nudges row, so each counts the other's nudges.

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

from bot.analytics.dashboard import AtRisk, learners_at_risk
from bot.keyboards.learning import EnrollmentAction, EnrollmentCB
from bot.models import Course, CourseOptions, Enrollment, Job, JobStatus, Nudge, ProductKind, User
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Button, Outgoing
from bot.services import access
from bot.services.drip import Prefs, in_quiet_hours, out_of_quiet_hours

log = logging.getLogger(__name__)

KIND = "stats.nudge"
NUDGE_EVERY = timedelta(days=7)
AUTO_KIND = "stats.nudge.auto"
AUTO_EVERY = timedelta(days=14)
SWEEP_EVERY = timedelta(hours=6)

TextFor = Callable[[User, AtRisk], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class NudgeResult:
    queued: int
    recent: int  # nudged less than NUDGE_EVERY ago: left alone


async def queue_nudges(
    session: AsyncSession,
    learners: list[AtRisk],
    text_for: TextFor,
    now: datetime,
    every: timedelta = NUDGE_EVERY,
    skip_blocked: bool = False,
) -> NudgeResult:
    queued = recent = 0
    for learner in learners:
        last = await session.scalar(
            select(Nudge).where(
                Nudge.user_id == learner.user_id, Nudge.course_id == learner.course_id
            )
        )
        if last is not None and last.sent_at > now - every:
            recent += 1
            continue
        user = await session.get(User, learner.user_id)
        if user is None or (skip_blocked and user.is_blocked):
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


async def set_auto(
    session: AsyncSession, creator_id: int, course_id: int, on: bool
) -> Course | None:
    """Switch the automatic nudge of one of the creator's courses; None: not theirs."""
    course = await session.get(Course, course_id)
    if course is None or course.creator_id != creator_id:
        return None
    options = await session.get(CourseOptions, course_id)
    if options is None:
        session.add(CourseOptions(course_id=course_id, question_stars=0, auto_nudges=on))
    else:
        options.auto_nudges = on
    await session.flush()
    return course


async def auto_courses(session: AsyncSession) -> list[int]:
    """Published courses whose creator left the automatic nudge on (the default)."""
    off = select(CourseOptions.course_id).where(CourseOptions.auto_nudges.is_(False))
    return list(
        await session.scalars(
            select(Course.id).where(Course.published.is_(True), Course.id.not_in(off))
        )
    )


async def sweep(session: AsyncSession, text_for: TextFor, now: datetime) -> NudgeResult:
    learners = await learners_at_risk(session, await auto_courses(session), now)
    return await queue_nudges(session, learners, text_for, now, every=AUTO_EVERY, skip_blocked=True)


async def ensure_scheduled(session: AsyncSession, now: datetime) -> None:
    """Create the sweep's ticker once; every start after that finds it by its key."""
    if await session.scalar(select(Job.id).where(Job.dedupe_key == AUTO_KIND)) is None:
        session.add(Job(kind=AUTO_KIND, dedupe_key=AUTO_KIND, payload={}, run_at=now))


def register(registry: JobRegistry, text_for: TextFor | None = None) -> None:
    registry.register(KIND, run)
    if text_for is None:
        return
    texts = text_for

    async def auto(ctx: JobContext, job: Job) -> datetime:
        now = ctx.clock.now()
        result = await sweep(ctx.session, texts, now)
        if result.queued:
            log.info("automatic nudges queued: %d", result.queued)
        return now + SWEEP_EVERY

    registry.register(AUTO_KIND, auto)
