"""Check-in challenges (打卡): creating and joining one, checking in once per local day,
streaks in the member's own timezone, the leaderboard, featured check-ins and the
member's daily reminder time. No aiogram here; the jobs' messages are the handler's.

Days are the member's local dates (users.timezone, else the bot's TIMEZONE): a check-in
at 23:30 in Berlin and one at 00:30 the next Berlin morning are two days, whatever UTC
says, and a DST change moves no day. A streak counts consecutive local days; one missed
day per ISO week may be bridged by a freeze (used automatically at the next check-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    Challenge,
    ChallengeMember,
    CheckIn,
    Course,
    Creator,
    Entitlement,
    Group,
    Job,
    JobStatus,
    Plan,
    ProductKind,
    User,
)
from bot.services import access
from bot.services.changes import Tracker
from bot.services.drip import zone

MAX_DAYS = 366
TITLE_LIMIT = 200
TOP = 10
DEFAULT_REMIND = 20 * 60  # 20:00 local
REMIND_JOB = "challenge.remind"
WEEKLY_JOB = "challenge.weekly"
WEEK = timedelta(days=7)
TEXT_KEPT = 1000


class Refusal(StrEnum):
    NO_TARGET = "no_target"  # no course or plan of this creator
    BAD_GROUP = "bad_group"  # not a group the creator linked
    NOT_FOUND = "not_found"
    ENDED = "ended"
    NOT_HOLDER = "not_holder"  # does not have the course or plan
    NOT_MEMBER = "not_member"
    ALREADY_MEMBER = "already_member"
    TWICE = "twice"  # checked in today already
    NOT_YOURS = "not_yours"  # another creator's


# --- days and streaks (pure) -----------------------------------------------------------


def local_day(now: datetime, tz: str | None) -> date:
    return now.astimezone(zone(tz)).date()


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class Streak:
    streak: int
    freeze_week: date | None


def after_check_in(last: date | None, streak: int, freeze: date | None, day: date) -> Streak:
    """The streak once `day` is checked in (day is later than last)."""
    if last is None:
        return Streak(1, freeze)
    gap = (day - last).days
    if gap == 1:
        return Streak(streak + 1, freeze)
    missed = day - timedelta(days=1)
    if gap == 2 and freeze != week_of(missed):
        return Streak(streak + 1, week_of(missed))  # the week's freeze bridges one day
    return Streak(1, freeze)


def current(last: date | None, streak: int, freeze: date | None, today: date) -> int:
    """The streak as it stands today: still alive while today (or, with the freeze still
    free, tomorrow) can continue it; else 0."""
    if last is None:
        return 0
    gap = (today - last).days
    if gap <= 1:
        return streak
    if gap == 2 and freeze != week_of(today - timedelta(days=1)):
        return streak
    return 0


def in_quiet(minute: int, start: int, end: int) -> bool:
    """Whether `minute` past local midnight falls in quiet hours start–end."""
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def next_remind(now: datetime, tz: str | None, minute: int) -> datetime:
    """The next moment after `now` that is `minute` past local midnight."""
    zi = zone(tz)
    local = now.astimezone(zi)
    at = time(minute // 60, minute % 60)
    for offset in (0, 1, 2):
        day = local.date() + timedelta(days=offset)
        when = datetime.combine(day, at, tzinfo=zi).astimezone(UTC)
        if when > now:
            return when
    raise AssertionError("unreachable")


# --- creating, joining ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    course_id: int | None = None
    plan_id: int | None = None


async def create(
    session: AsyncSession,
    creator: Creator,
    title: str,
    days: int,
    target: Target,
    group_chat_id: int | None,
    now: datetime,
) -> Challenge | Refusal:
    if target.course_id is not None:
        owner = await session.scalar(select(Course.creator_id).where(Course.id == target.course_id))
    else:
        owner = await session.scalar(select(Plan.creator_id).where(Plan.id == target.plan_id))
    if owner is None or owner != creator.id:
        return Refusal.NO_TARGET
    if group_chat_id is not None:
        group = await session.scalar(select(Group).where(Group.chat_id == group_chat_id))
        if group is None or group.creator_id != creator.id:
            return Refusal.BAD_GROUP
    challenge = Challenge(
        creator_id=creator.id,
        course_id=target.course_id,
        plan_id=target.plan_id,
        title=title[:TITLE_LIMIT],
        days=days,
        group_chat_id=group_chat_id,
        ends_at=now + timedelta(days=days),
        created_at=now,
    )
    session.add(challenge)
    await session.flush()
    if group_chat_id is not None:
        session.add(_job(WEEKLY_JOB, f"{WEEKLY_JOB}:{challenge.id}", challenge.id, now + WEEK, now))
    await session.flush()
    return challenge


def _job(kind: str, key: str, ref: int, at: datetime, now: datetime) -> Job:
    return Job(
        kind=kind,
        dedupe_key=key,
        payload={"id": ref},
        run_at=at,
        status=JobStatus.PENDING,
        created_at=now,
        updated_at=now,
    )


async def holds(session: AsyncSession, user_id: int, challenge: Challenge, now: datetime) -> bool:
    if challenge.course_id is not None:
        return await access.has_access(
            session, user_id, ProductKind.COURSE, challenge.course_id, now
        )
    assert challenge.plan_id is not None
    return await access.has_access(session, user_id, ProductKind.PLAN, challenge.plan_id, now)


async def joinable(
    session: AsyncSession, user_id: int, challenge_id: int, now: datetime
) -> Challenge | Refusal:
    challenge = await session.get(Challenge, challenge_id)
    if challenge is None:
        return Refusal.NOT_FOUND
    if challenge.ends_at <= now:
        return Refusal.ENDED
    if not await holds(session, user_id, challenge, now):
        return Refusal.NOT_HOLDER
    if await member_of(session, user_id, challenge.id) is not None:
        return Refusal.ALREADY_MEMBER
    return challenge


async def member_of(
    session: AsyncSession, user_id: int, challenge_id: int
) -> ChallengeMember | None:
    return await session.scalar(
        select(ChallengeMember).where(
            ChallengeMember.challenge_id == challenge_id, ChallengeMember.user_id == user_id
        )
    )


async def join(
    session: AsyncSession, user: User, challenge: Challenge, now: datetime
) -> ChallengeMember | Refusal:
    member = ChallengeMember(
        challenge_id=challenge.id,
        user_id=user.id,
        joined_at=now,
        remind_minute=DEFAULT_REMIND,
        streak=0,
        best=0,
        check_ins=0,
    )
    try:
        async with session.begin_nested():
            session.add(member)
            await session.flush()
    except IntegrityError:  # a second press at the same moment
        return Refusal.ALREADY_MEMBER
    await _schedule_reminder(session, member, user.timezone, now)
    return member


async def _schedule_reminder(
    session: AsyncSession, member: ChallengeMember, tz: str | None, now: datetime
) -> None:
    """One reminder job per member, re-armed (not duplicated) when the time changes."""
    if member.remind_minute is None:
        return
    key = f"{REMIND_JOB}:{member.id}"
    at = next_remind(now, tz, member.remind_minute)
    job = await session.scalar(select(Job).where(Job.dedupe_key == key))
    if job is None:
        session.add(_job(REMIND_JOB, key, member.id, at, now))
    elif job.status != JobStatus.RUNNING:
        job.status, job.run_at, job.attempts = JobStatus.PENDING, at, 0
    await session.flush()


async def set_remind(session: AsyncSession, user: User, minute: int | None, now: datetime) -> int:
    """The reminder time of every challenge the user is in; how many that is."""
    members = list(
        await session.scalars(
            select(ChallengeMember)
            .join(Challenge, Challenge.id == ChallengeMember.challenge_id)
            .where(ChallengeMember.user_id == user.id, Challenge.ends_at > now)
        )
    )
    for member in members:
        member.remind_minute = minute
        await _schedule_reminder(session, member, user.timezone, now)
    await session.flush()
    return len(members)


# --- checking in ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Content:
    chat_id: int
    message_id: int
    content_type: str
    text: str


async def can_check_in(
    session: AsyncSession, user: User, challenge_id: int, now: datetime
) -> tuple[Challenge, ChallengeMember] | Refusal:
    challenge = await session.get(Challenge, challenge_id)
    if challenge is None:
        return Refusal.NOT_FOUND
    member = await member_of(session, user.id, challenge.id)
    if member is None:
        return Refusal.NOT_MEMBER
    if challenge.ends_at <= now:
        return Refusal.ENDED
    if member.last_day == local_day(now, user.timezone):
        return Refusal.TWICE
    return challenge, member


async def check_in(
    session: AsyncSession, user: User, challenge_id: int, content: Content, now: datetime
) -> ChallengeMember | Refusal:
    found = await can_check_in(session, user, challenge_id, now)
    if isinstance(found, Refusal):
        return found
    challenge, member = found
    day = local_day(now, user.timezone)
    if member.last_day is not None and day < member.last_day:
        return Refusal.TWICE  # the timezone moved west since: that day is done
    row = CheckIn(
        challenge_id=challenge.id,
        user_id=user.id,
        day=day,
        chat_id=content.chat_id,
        message_id=content.message_id,
        content_type=content.content_type,
        text=content.text[:TEXT_KEPT],
        featured=False,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return Refusal.TWICE
    step = after_check_in(member.last_day, member.streak, member.freeze_week, day)
    member.streak, member.freeze_week, member.last_day = step.streak, step.freeze_week, day
    member.best = max(member.best, member.streak)
    member.check_ins += 1
    await session.flush()
    return member


# --- what members and creators see ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    user_id: int
    name: str
    streak: int
    check_ins: int


@dataclass(frozen=True, slots=True)
class Board:
    top: list[Row]
    # The asker's place (1-based) and row, if they are in the challenge.
    rank: int | None
    mine: Row | None
    members: int


async def leaderboard(
    session: AsyncSession, challenge_id: int, user_id: int | None, now: datetime
) -> Board:
    """Current streaks (each in its member's own today), then check-ins, then who joined
    first. Every member is read: a challenge has hundreds, not millions."""
    rows = await session.execute(
        select(ChallengeMember, User.first_name, User.timezone)
        .join(User, User.id == ChallengeMember.user_id)
        .where(ChallengeMember.challenge_id == challenge_id)
        .order_by(ChallengeMember.joined_at, ChallengeMember.id)
    )
    ranked = sorted(
        (
            Row(
                m.user_id,
                name,
                current(m.last_day, m.streak, m.freeze_week, local_day(now, tz)),
                m.check_ins,
            )
            for m, name, tz in rows.tuples()
        ),
        key=lambda r: (-r.streak, -r.check_ins),
    )
    place = next((i for i, r in enumerate(ranked) if r.user_id == user_id), None)
    return Board(
        ranked[:TOP],
        None if place is None else place + 1,
        None if place is None else ranked[place],
        len(ranked),
    )


@dataclass(frozen=True, slots=True)
class Listed:
    challenge: Challenge
    member: ChallengeMember | None


async def for_learner(session: AsyncSession, user_id: int, now: datetime) -> list[Listed]:
    """Running challenges the learner is in or may join (they hold its course or plan)."""
    held = select(Entitlement.product_kind, Entitlement.product_id).where(
        Entitlement.user_id == user_id,
        Entitlement.revoked_at.is_(None),
        or_(Entitlement.expires_at.is_(None), Entitlement.expires_at > now),
    )
    kinds = {(k, i) for k, i in (await session.execute(held)).tuples()}
    courses = [i for k, i in kinds if k == ProductKind.COURSE]
    plans = [i for k, i in kinds if k == ProductKind.PLAN]
    member_ids = select(ChallengeMember.challenge_id).where(ChallengeMember.user_id == user_id)
    challenges = list(
        await session.scalars(
            select(Challenge)
            .where(
                Challenge.ends_at > now,
                or_(
                    Challenge.id.in_(member_ids),
                    Challenge.course_id.in_(courses),
                    Challenge.plan_id.in_(plans),
                ),
            )
            .order_by(Challenge.id)
            .limit(20)
        )
    )
    out = []
    for challenge in challenges:
        out.append(Listed(challenge, await member_of(session, user_id, challenge.id)))
    return out


@dataclass(frozen=True, slots=True)
class Running:
    """A challenge a course card offers its owners to join."""

    id: int
    title: str
    ends_at: datetime


# What a card shows, kept in memory with the card's other extras
# (bot.marketplace.card_extras): a commit that changes a challenge drops its course's.
CHALLENGES = Tracker(Challenge, key=lambda obj: obj.course_id)
ON_CARD = 3


def _running(now: datetime) -> Any:
    return (
        select(Challenge.course_id, Challenge.id, Challenge.title, Challenge.ends_at)
        .where(Challenge.course_id.is_not(None), Challenge.ends_at > now)
        .order_by(Challenge.id)
    )


async def running_by_course(session: AsyncSession, now: datetime) -> dict[int, tuple[Running, ...]]:
    """Course id → every challenge of the course running at `now`, oldest first (a card
    shows the first ON_CARD of those still running when it is shown: `on_card`)."""
    by_course: dict[int, list[Running]] = {}
    for course_id, challenge_id, title, ends_at in await session.execute(_running(now)):
        by_course.setdefault(int(course_id), []).append(Running(challenge_id, title, ends_at))
    return {course_id: tuple(found) for course_id, found in by_course.items()}


async def running_on_course(
    session: AsyncSession, course_id: int, now: datetime
) -> tuple[Running, ...]:
    rows = await session.execute(_running(now).where(Challenge.course_id == course_id))
    return tuple(Running(challenge_id, title, ends_at) for _c, challenge_id, title, ends_at in rows)


def on_card(running: tuple[Running, ...], now: datetime) -> list[Running]:
    return [c for c in running if c.ends_at > now][:ON_CARD]


async def creators_challenge(
    session: AsyncSession, challenge_id: int, creator: Creator | None
) -> Challenge | Refusal:
    challenge = await session.get(Challenge, challenge_id)
    if challenge is None:
        return Refusal.NOT_FOUND
    if creator is None or challenge.creator_id != creator.id:
        return Refusal.NOT_YOURS
    return challenge


async def of_the_day(
    session: AsyncSession, challenge_id: int, now: datetime, limit: int = 20
) -> list[tuple[CheckIn, str]]:
    """The last 24 hours' check-ins (members' days differ; a creator's "today" is this)."""
    rows = await session.execute(
        select(CheckIn, User.first_name)
        .join(User, User.id == CheckIn.user_id)
        .where(CheckIn.challenge_id == challenge_id, CheckIn.created_at > now - timedelta(days=1))
        .order_by(CheckIn.created_at.desc())
        .limit(limit)
    )
    return list(rows.tuples())


async def feature(
    session: AsyncSession, check_in_id: int, creator: Creator | None
) -> tuple[CheckIn, Challenge] | Refusal:
    row = await session.get(CheckIn, check_in_id)
    if row is None:
        return Refusal.NOT_FOUND
    challenge = await creators_challenge(session, row.challenge_id, creator)
    if isinstance(challenge, Refusal):
        return challenge
    row.featured = True
    await session.flush()
    return row, challenge


async def featured(
    session: AsyncSession, challenge_id: int, now: datetime
) -> list[tuple[CheckIn, str]]:
    rows = await session.execute(
        select(CheckIn, User.first_name)
        .join(User, User.id == CheckIn.user_id)
        .where(
            and_(
                CheckIn.challenge_id == challenge_id,
                CheckIn.featured.is_(True),
                CheckIn.created_at > now - timedelta(days=1),
            )
        )
        .order_by(CheckIn.id)
        .limit(5)
    )
    return list(rows.tuples())
