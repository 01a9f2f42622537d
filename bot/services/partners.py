"""Study partners (用户匹配): opting in per course, proposing a partner, both accepting,
ending. No aiogram here.

A partner is proposed from the same course's opted-in learners: progress (lessons Done)
within MAX_GAP, waking days (outside quiet hours, each in their own timezone) that
overlap by MIN_OVERLAP minutes or more, never someone proposed to this learner before
(the pair is unique for ever), never a learner who blocked the bot or paused the course.
Names stay hidden until both accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    Course,
    Creator,
    Delivery,
    Enrollment,
    PartnerOptIn,
    Partnership,
    PartnerStatus,
    ProductKind,
    User,
)
from bot.services import access
from bot.services.challenges import in_quiet
from bot.services.drip import zone

MAX_GAP = 2
MIN_OVERLAP = 120  # minutes of waking day in common
SLOT = 15
PROPOSAL_TTL = timedelta(hours=48)
OPEN = (PartnerStatus.PROPOSED, PartnerStatus.ACTIVE)


class Refusal(StrEnum):
    NO_COURSE = "no_course"
    NOT_HOLDER = "not_holder"
    OWN_COURSE = "own_course"
    NOT_ENROLLED = "not_enrolled"  # no lessons yet, or the course is paused
    HAS_PARTNER = "has_partner"
    NO_MATCH = "no_match"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    ALREADY = "already"  # accepted before
    CLOSED = "closed"  # declined, ended or expired


def waking_slots(user: User, on: date) -> set[int]:
    """The UTC quarter-hours (minute of the day) of `on` in which the user is awake."""
    tz = zone(user.timezone)
    slots = set()
    for minute in range(0, 24 * 60, SLOT):
        if in_quiet(minute, user.quiet_start, user.quiet_end):
            continue
        local = datetime.combine(on, time(minute // 60, minute % 60), tzinfo=tz)
        utc = local.astimezone(UTC)
        slots.add(utc.hour * 60 + utc.minute)
    return slots


def overlap(a: User, b: User, on: date) -> int:
    return SLOT * len(waking_slots(a, on) & waking_slots(b, on))


async def progress(session: AsyncSession, user_id: int, course_id: int) -> int | None:
    """Lessons Done in the course; None when not enrolled or paused."""
    enrollment = await session.scalar(
        select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.course_id == course_id)
    )
    if enrollment is None or enrollment.paused_at is not None:
        return None
    done = await session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.enrollment_id == enrollment.id, Delivery.done_at.is_not(None))
    )
    return int(done or 0)


async def opt_in(
    session: AsyncSession, user: User, course_id: int, now: datetime
) -> Course | Refusal:
    course = await session.get(Course, course_id)
    if course is None:
        return Refusal.NO_COURSE
    owner = await session.scalar(select(Creator.user_id).where(Creator.id == course.creator_id))
    if owner == user.id:
        return Refusal.OWN_COURSE
    if not await access.has_access(session, user.id, ProductKind.COURSE, course_id, now):
        return Refusal.NOT_HOLDER
    row = await session.scalar(
        select(PartnerOptIn).where(
            PartnerOptIn.user_id == user.id, PartnerOptIn.course_id == course_id
        )
    )
    if row is None:
        session.add(PartnerOptIn(user_id=user.id, course_id=course_id, active=True, created_at=now))
    else:
        row.active = True
    await session.flush()
    return course


async def opt_out(session: AsyncSession, user_id: int, course_id: int) -> bool:
    row = await session.scalar(
        select(PartnerOptIn).where(
            PartnerOptIn.user_id == user_id, PartnerOptIn.course_id == course_id
        )
    )
    if row is None or not row.active:
        return False
    row.active = False
    await session.flush()
    return True


def _involving(user_id: int):  # type: ignore[no-untyped-def]
    return or_(Partnership.user_a == user_id, Partnership.user_b == user_id)


async def _busy(session: AsyncSession, user_id: int, course_id: int, now: datetime) -> bool:
    """In an active partnership, or a proposal still open, in this course."""
    return (
        await session.scalar(
            select(Partnership.id).where(
                _involving(user_id),
                Partnership.course_id == course_id,
                or_(
                    Partnership.status == PartnerStatus.ACTIVE,
                    (Partnership.status == PartnerStatus.PROPOSED) & (Partnership.expires_at > now),
                ),
            )
        )
        is not None
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    user: User
    gap: int
    overlap: int


async def find_match(
    session: AsyncSession, user: User, course_id: int, now: datetime
) -> Partnership | Refusal:
    """Propose the best partner for `user` in the course, or say why there is none."""
    mine = await progress(session, user.id, course_id)
    if mine is None:
        return Refusal.NOT_ENROLLED
    if await _busy(session, user.id, course_id, now):
        return Refusal.HAS_PARTNER
    met = (
        select(Partnership.user_a)
        .where(Partnership.user_b == user.id)
        .union(select(Partnership.user_b).where(Partnership.user_a == user.id))
    )
    others = list(
        await session.scalars(
            select(User)
            .join(PartnerOptIn, PartnerOptIn.user_id == User.id)
            .where(
                PartnerOptIn.course_id == course_id,
                PartnerOptIn.active.is_(True),
                User.id != user.id,
                User.is_blocked.is_(False),
                User.id.not_in(met),
            )
            .order_by(PartnerOptIn.created_at, User.id)
            .limit(200)
        )
    )
    today = now.date()
    best: Candidate | None = None
    for other in others:
        theirs = await progress(session, other.id, course_id)
        if theirs is None or abs(theirs - mine) > MAX_GAP:
            continue
        if not await access.has_access(session, other.id, ProductKind.COURSE, course_id, now):
            continue
        common = overlap(user, other, today)
        if common < MIN_OVERLAP or await _busy(session, other.id, course_id, now):
            continue
        found = Candidate(other, abs(theirs - mine), common)
        if best is None or (found.gap, -found.overlap) < (best.gap, -best.overlap):
            best = found
    if best is None:
        return Refusal.NO_MATCH
    a, b = sorted((user.id, best.user.id))
    pair = Partnership(
        course_id=course_id,
        user_a=a,
        user_b=b,
        status=PartnerStatus.PROPOSED,
        a_accepted=False,
        b_accepted=False,
        proposed_at=now,
        expires_at=now + PROPOSAL_TTL,
    )
    try:
        async with session.begin_nested():
            session.add(pair)
            await session.flush()
    except IntegrityError:  # the other side's search proposed the same pair a moment ago
        return Refusal.NO_MATCH
    return pair


def other_of(pair: Partnership, user_id: int) -> int:
    return pair.user_b if pair.user_a == user_id else pair.user_a


async def _pair_of(session: AsyncSession, pair_id: int, user_id: int) -> Partnership | None:
    pair = await session.get(Partnership, pair_id)
    if pair is None or user_id not in (pair.user_a, pair.user_b):
        return None
    return pair


async def answer(
    session: AsyncSession, pair_id: int, user_id: int, accept: bool, now: datetime
) -> Partnership | Refusal:
    """Accept or decline a proposal; ACTIVE once both accepted."""
    pair = await _pair_of(session, pair_id, user_id)
    if pair is None:
        return Refusal.NOT_FOUND
    mine_accepted = pair.a_accepted if pair.user_a == user_id else pair.b_accepted
    if pair.status == PartnerStatus.ACTIVE or (
        pair.status == PartnerStatus.PROPOSED and mine_accepted and accept
    ):
        return Refusal.ALREADY
    if pair.status != PartnerStatus.PROPOSED:
        return Refusal.CLOSED
    if pair.expires_at <= now:
        return Refusal.EXPIRED
    if not accept:
        pair.status, pair.ended_at = PartnerStatus.DECLINED, now
    elif pair.user_a == user_id:
        pair.a_accepted = True
    else:
        pair.b_accepted = True
    if pair.a_accepted and pair.b_accepted:
        pair.status, pair.started_at = PartnerStatus.ACTIVE, now
    await session.flush()
    return pair


async def end(
    session: AsyncSession, pair_id: int, user_id: int, now: datetime
) -> Partnership | Refusal:
    pair = await _pair_of(session, pair_id, user_id)
    if pair is None:
        return Refusal.NOT_FOUND
    if pair.status != PartnerStatus.ACTIVE:
        return Refusal.CLOSED
    pair.status, pair.ended_at = PartnerStatus.ENDED, now
    await session.flush()
    return pair


async def active_of(session: AsyncSession, user_id: int) -> list[Partnership]:
    return list(
        await session.scalars(
            select(Partnership)
            .where(_involving(user_id), Partnership.status == PartnerStatus.ACTIVE)
            .order_by(Partnership.id)
        )
    )
