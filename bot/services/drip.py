"""Drip: enrollments, when each lesson falls due, progress, pause and resume.

The schedule of one enrollment is always recomputed as a whole by `reschedule()`, from
the lessons' release rules, the learner's timezone and quiet hours, and what was already
delivered. Enrolling, marking a lesson done, resuming, changing quiet hours or editing a
course's schedule all end in it, so they cannot disagree. Rules:

- lessons arrive in course order: a lesson is never due before the one in front of it;
- AFTER_DAYS: N days after enrollment, at the local time of day the learner enrolled;
- AT_DATE: `Lesson.release_at` is a wall-clock date and time (its UTC fields are read as
  local time): every learner gets the lesson at that time *in their own timezone*;
- AFTER_PREVIOUS: once the previous lesson is marked done (the first lesson: at once);
  until then this lesson, and every lesson after it, has no delivery row at all;
- nothing is ever due inside the learner's quiet hours: it moves to the end of them;
- delivered rows (sent, or being sent right now) are never touched, so nothing already
  delivered is sent again;
- a quiz with a pass mark gates: the lessons after it wait (no delivery row) until the
  learner passed it, then follow from that moment as from a Done;
- access follows money: without an active course entitlement nothing is planned, and
  what was planned is revoked (refund, expiry). Only a new grant plans it again, so no
  learner action (Done, Resume, /quiet, /timezone) can bring a revoked lesson back.

The worker re-checks quiet hours when it sends, because a backlog (a paused learner, a
block, a long outage) can make an old due time come round in the middle of the night. It
re-checks the entitlement too: an expiry revokes nothing by itself, it only passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import rollups
from bot.models import (
    ContentType,
    Course,
    Delivery,
    DeliveryStatus,
    Enrollment,
    Lesson,
    ProductKind,
    Quiz,
    ReleaseRule,
    User,
    utcnow,
)
from bot.services import access, certificates

_config = {"timezone": "UTC"}

# Rows in these states already reached the learner (or may have: the worker is on them).
_DELIVERED = (DeliveryStatus.SENT, DeliveryStatus.SENDING)
REVOKED = "access revoked"


def install(default_timezone: str = "UTC") -> None:
    """Wire drip into access changes: a granted course enrolls, a revoked one stops."""
    zone(default_timezone)  # fail early on a bad TIMEZONE setting
    _config["timezone"] = default_timezone
    access.on_grant(ProductKind.COURSE, _on_course_granted)
    access.on_revoke(ProductKind.COURSE, _on_course_revoked)
    certificates.install()


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or _config["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(_config["timezone"])


def is_valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Prefs:
    """What decides a learner's delivery times."""

    tz: ZoneInfo
    quiet_start: int  # minutes after local midnight
    quiet_end: int

    @classmethod
    def of(cls, user: User) -> Prefs:
        return cls(zone(user.timezone), user.quiet_start, user.quiet_end)


def in_quiet_hours(when: datetime, prefs: Prefs) -> bool:
    local = when.astimezone(prefs.tz)
    minute = local.hour * 60 + local.minute
    start, end = prefs.quiet_start, prefs.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def out_of_quiet_hours(when: datetime, prefs: Prefs) -> datetime:
    """`when`, or the end of the quiet hours it falls into."""
    if not in_quiet_hours(when, prefs):
        return when
    local = when.astimezone(prefs.tz).replace(tzinfo=None)
    end = local.replace(
        hour=prefs.quiet_end // 60, minute=prefs.quiet_end % 60, second=0, microsecond=0
    )
    if end <= local:
        end += timedelta(days=1)
    return end.replace(tzinfo=prefs.tz).astimezone(UTC)


def floating_to_utc(wall: datetime, prefs: Prefs) -> datetime:
    """A wall-clock time stored in a UTC column, read in the learner's timezone."""
    return wall.replace(tzinfo=None).replace(tzinfo=prefs.tz).astimezone(UTC)


def nominal_release(
    lesson: Lesson,
    started_at: datetime,
    prefs: Prefs,
    *,
    first: bool,
    previous_done_at: datetime | None,
) -> datetime | None:
    """When the rule alone would release the lesson; None while that is not known yet."""
    if lesson.release_rule == ReleaseRule.AT_DATE and lesson.release_at is not None:
        return floating_to_utc(lesson.release_at, prefs)
    if lesson.release_rule == ReleaseRule.AFTER_PREVIOUS:
        return started_at if first else previous_done_at
    # Adding days to a local time keeps the time of day across DST changes.
    local = started_at.astimezone(prefs.tz)
    return (local + timedelta(days=max(0, lesson.release_days))).astimezone(UTC)


async def _lessons(session: AsyncSession, course_id: int) -> list[Lesson]:
    rows = await session.scalars(
        select(Lesson).where(Lesson.course_id == course_id).order_by(Lesson.position, Lesson.id)
    )
    return list(rows)


async def _gates(session: AsyncSession, lessons: Sequence[Lesson]) -> set[int]:
    """The lessons that are quizzes with a pass mark."""
    quiz_ids = [lesson.id for lesson in lessons if lesson.content_type == ContentType.QUIZ]
    if not quiz_ids:
        return set()
    rows = await session.scalars(
        select(Quiz.lesson_id).where(Quiz.lesson_id.in_(quiz_ids), Quiz.pass_percent.is_not(None))
    )
    return set(rows)


async def reschedule(
    session: AsyncSession,
    enrollment: Enrollment,
    now: datetime,
    *,
    user: User | None = None,
    lessons: Sequence[Lesson] | None = None,
) -> None:
    """Bring the enrollment's future deliveries in line with the course and the learner."""
    user = user or await session.get(User, enrollment.user_id)
    if user is None:
        return
    if not await entitled(session, enrollment, now):
        await stop(session, enrollment)
        return
    if lessons is None:
        lessons = await _lessons(session, enrollment.course_id)
    prefs = Prefs.of(user)
    gates = await _gates(session, lessons)
    rows = await session.scalars(select(Delivery).where(Delivery.enrollment_id == enrollment.id))
    by_lesson = {d.lesson_id: d for d in rows}
    previous_due: datetime | None = None
    previous_done: datetime | None = None
    unknown = False
    for index, lesson in enumerate(lessons):
        row = by_lesson.get(lesson.id)
        if row is not None and row.status in _DELIVERED:
            previous_due = row.sent_at or row.due_at
            previous_done = row.done_at
            if lesson.id in gates:
                if row.done_at is None:
                    unknown = True  # not passed yet: what follows waits
                else:
                    previous_due = max(previous_due, row.done_at)
            continue
        nominal = None
        if not unknown:
            nominal = nominal_release(
                lesson,
                enrollment.started_at,
                prefs,
                first=index == 0,
                previous_done_at=previous_done,
            )
        if nominal is None:
            unknown = True
            if row is not None and row.status == DeliveryStatus.PENDING:
                await session.delete(row)
            continue
        due = max(nominal, enrollment.started_at, now)
        if previous_due is not None:
            due = max(due, previous_due)
        due = out_of_quiet_hours(due, prefs)
        if row is None:
            row = Delivery(
                enrollment_id=enrollment.id,
                lesson_id=lesson.id,
                user_id=enrollment.user_id,
                due_at=due,
                status=DeliveryStatus.PENDING,
                created_at=now,
            )
            session.add(row)
        elif row.status == DeliveryStatus.PENDING or (
            # Stopped by a revoke: access is back (checked above), so are they
            # ("chat not found" stays).
            row.status == DeliveryStatus.SKIPPED and row.last_error == REVOKED
        ):
            row.status = DeliveryStatus.PENDING
            row.last_error = None
            row.due_at = due
            row.claimed_until = None
        previous_due = due
        previous_done = None
        if lesson.id in gates:
            unknown = True  # planned, so certainly not passed yet
    await session.flush()


async def enroll(
    session: AsyncSession, user_id: int, course_id: int, now: datetime | None = None
) -> Enrollment:
    """Enroll (idempotent) and schedule. A returning learner keeps their progress."""
    now = now or utcnow()
    enrollment = await session.scalar(
        select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.course_id == course_id)
    )
    if enrollment is None:
        enrollment = Enrollment(
            user_id=user_id, course_id=course_id, started_at=now, created_at=now
        )
        session.add(enrollment)
        await session.flush()
    await reschedule(session, enrollment, now)
    return enrollment


async def _on_course_granted(session: AsyncSession, change: access.AccessChange) -> None:
    await enroll(session, change.user_id, change.product_id, change.at)


async def _on_course_revoked(session: AsyncSession, change: access.AccessChange) -> None:
    # Refunded or revoked: stop what has not gone out yet. A new grant re-schedules it.
    enrollment = await _enrollment(session, change.user_id, change.product_id)
    if enrollment is not None:
        await stop(session, enrollment)


async def entitled(session: AsyncSession, enrollment: Enrollment, now: datetime) -> bool:
    """The learner may have this course's lessons now (paid, granted, not expired)."""
    return await access.has_access(
        session, enrollment.user_id, ProductKind.COURSE, enrollment.course_id, now
    )


async def stop(session: AsyncSession, enrollment: Enrollment) -> None:
    """Revoke every lesson of the enrollment that has not gone out yet.

    Revoked rows stay (as SKIPPED, `REVOKED`) rather than being deleted, so a new grant
    brings back the same rows and the history shows what access cut off.
    """
    rows = await session.scalars(
        select(Delivery).where(
            Delivery.enrollment_id == enrollment.id,
            Delivery.status == DeliveryStatus.PENDING,
        )
    )
    for row in rows:
        revoke_delivery(row)
    await session.flush()


def revoke_delivery(row: Delivery) -> None:
    row.status = DeliveryStatus.SKIPPED
    row.last_error = REVOKED
    row.claimed_until = None


async def _enrollment(session: AsyncSession, user_id: int, course_id: int) -> Enrollment | None:
    return await session.scalar(
        select(Enrollment).where(Enrollment.user_id == user_id, Enrollment.course_id == course_id)
    )


# --- learner actions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepResult:
    """What pressing Done or Next led to; the handler words it."""

    ok: bool  # False: not this learner's lesson (forged or stale button)
    newly_done: bool = False
    course_finished: bool = False
    next_due: datetime | None = None  # when the next lesson arrives; None: no date yet
    next_waits_for_done: bool = False
    next_already_sent: bool = False
    access_ended: bool = False  # refunded or expired: nothing more arrives
    is_last: bool = False
    tz: str = "UTC"
    course_id: int = 0  # set when ok
    is_quiz: bool = False  # Done pressed on a quiz: it is done by answering it


async def _own_delivery(
    session: AsyncSession, user_id: int, delivery_id: int
) -> tuple[Delivery, Enrollment] | None:
    row = (
        await session.execute(
            select(Delivery, Enrollment)
            .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
            .where(Delivery.id == delivery_id, Delivery.user_id == user_id)
        )
    ).first()
    # SENDING counts too: the learner can press Done on the lesson before the worker has
    # committed that it was sent (the button exists only on a delivered message).
    if row is None or row[0].status not in (DeliveryStatus.SENT, DeliveryStatus.SENDING):
        return None
    return row[0], row[1]


async def mark_done(
    session: AsyncSession, user_id: int, delivery_id: int, now: datetime | None = None
) -> StepResult:
    now = now or utcnow()
    owned = await _own_delivery(session, user_id, delivery_id)
    if owned is None:
        return StepResult(ok=False)
    delivery, enrollment = owned
    if await _is_quiz(session, delivery.lesson_id):
        # A quiz is done by answering it (bot.services.quizzes), never by a button.
        return StepResult(ok=False, is_quiz=True)
    if delivery.done_at is not None:
        result = await _after(session, delivery, enrollment, newly_done=False, now=now)
    else:
        result, _certificate = await complete(session, delivery, enrollment, now)
    result = replace(result, course_id=enrollment.course_id)
    return result


async def _is_quiz(session: AsyncSession, lesson_id: int) -> bool:
    kind = await session.scalar(select(Lesson.content_type).where(Lesson.id == lesson_id))
    return kind == ContentType.QUIZ


async def complete(
    session: AsyncSession, delivery: Delivery, enrollment: Enrollment, now: datetime
) -> tuple[StepResult, int | None]:
    """Mark a delivered lesson done (Done, or a quiz passed): the schedule moves on, the
    rollups count it, and a learner who has now done every lesson is issued a certificate
    in this same transaction (its picture is sent after the commit). Returns what that
    led to and the new certificate's id."""
    delivery.done_at = now
    await session.flush()
    await reschedule(session, enrollment, now)
    was_completed = enrollment.completed_at is not None
    result = await _after(session, delivery, enrollment, newly_done=True, now=now)
    creator_id = await session.scalar(
        select(Course.creator_id).where(Course.id == enrollment.course_id)
    )
    if creator_id is not None:
        await rollups.lesson_done(
            session, enrollment, creator_id, now, completed_at=enrollment.completed_at
        )
    certificate_id = None
    if not was_completed and enrollment.completed_at is not None:
        certificate = await certificates.issue(session, enrollment, now)
        certificate_id = certificate.id if certificate is not None else None
    return result, certificate_id


async def next_lesson(
    session: AsyncSession, user_id: int, delivery_id: int, now: datetime | None = None
) -> StepResult:
    """Next: when the next lesson waits for this one to be done, this counts as Done."""
    now = now or utcnow()
    owned = await _own_delivery(session, user_id, delivery_id)
    if owned is None:
        return StepResult(ok=False)
    delivery, enrollment = owned
    lessons = await _lessons(session, enrollment.course_id)
    ids = [lesson.id for lesson in lessons]
    following = (
        lessons[ids.index(delivery.lesson_id) + 1]
        if delivery.lesson_id in ids and ids.index(delivery.lesson_id) + 1 < len(ids)
        else None
    )
    if (
        following is not None
        and following.release_rule == ReleaseRule.AFTER_PREVIOUS
        and delivery.done_at is None
    ):
        return await mark_done(session, user_id, delivery_id, now)
    result = await _after(session, delivery, enrollment, newly_done=False, now=now)
    return replace(result, course_id=enrollment.course_id)


async def _after(
    session: AsyncSession,
    delivery: Delivery,
    enrollment: Enrollment,
    *,
    newly_done: bool,
    now: datetime,
) -> StepResult:
    lessons = await _lessons(session, enrollment.course_id)
    ids = [lesson.id for lesson in lessons]
    user = await session.get(User, enrollment.user_id)
    tz = user.timezone if user and user.timezone else _config["timezone"]
    rows = {
        d.lesson_id: d
        for d in await session.scalars(
            select(Delivery).where(Delivery.enrollment_id == enrollment.id)
        )
    }
    done = sum(1 for lid in ids if lid in rows and rows[lid].done_at is not None)
    finished = bool(ids) and done == len(ids)
    if finished and enrollment.completed_at is None:
        enrollment.completed_at = now
    position = ids.index(delivery.lesson_id) if delivery.lesson_id in ids else len(ids) - 1
    if position + 1 >= len(ids):
        return StepResult(
            ok=True, newly_done=newly_done, course_finished=finished, is_last=True, tz=tz
        )
    following = rows.get(ids[position + 1])
    if (following is None or following.status not in _DELIVERED) and not await entitled(
        session, enrollment, now
    ):
        return StepResult(ok=True, newly_done=newly_done, access_ended=True, tz=tz)
    if following is None:
        return StepResult(
            ok=True,
            newly_done=newly_done,
            course_finished=finished,
            next_waits_for_done=True,
            tz=tz,
        )
    if following.status in _DELIVERED:
        return StepResult(ok=True, newly_done=newly_done, next_already_sent=True, tz=tz)
    return StepResult(ok=True, newly_done=newly_done, next_due=following.due_at, tz=tz)


async def pause(
    session: AsyncSession, user_id: int, course_id: int, now: datetime | None = None
) -> bool:
    enrollment = await _enrollment(session, user_id, course_id)
    if enrollment is None:
        return False
    if enrollment.paused_at is None:
        enrollment.paused_at = now or utcnow()
        await session.flush()
    return True


async def resume(
    session: AsyncSession, user_id: int, course_id: int, now: datetime | None = None
) -> bool:
    """Resume where the learner stopped: the day-based schedule shifts by the pause."""
    now = now or utcnow()
    enrollment = await _enrollment(session, user_id, course_id)
    if enrollment is None:
        return False
    if enrollment.paused_at is not None:
        enrollment.started_at += max(timedelta(0), now - enrollment.paused_at)
        enrollment.paused_at = None
        await session.flush()
        await reschedule(session, enrollment, now)
    return True


async def reschedule_user(session: AsyncSession, user: User, now: datetime | None = None) -> None:
    """After a timezone or quiet-hours change."""
    now = now or utcnow()
    rows = await session.scalars(
        select(Enrollment).where(Enrollment.user_id == user.id, Enrollment.paused_at.is_(None))
    )
    for enrollment in list(rows):
        await reschedule(session, enrollment, now, user=user)


async def reschedule_course(
    session: AsyncSession, course_id: int, now: datetime | None = None
) -> int:
    """After a schedule edit: every enrolled learner's future lessons follow it."""
    now = now or utcnow()
    lessons = await _lessons(session, course_id)
    rows = await session.scalars(select(Enrollment).where(Enrollment.course_id == course_id))
    enrollments = list(rows)
    for enrollment in enrollments:
        await reschedule(session, enrollment, now, lessons=lessons)
    return len(enrollments)


async def forget_lesson(session: AsyncSession, lesson_id: int) -> None:
    """A deleted lesson's undelivered rows go with it (delivered ones keep their history)."""
    await session.execute(
        delete(Delivery).where(
            Delivery.lesson_id == lesson_id, Delivery.status == DeliveryStatus.PENDING
        )
    )


# --- progress -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CourseProgress:
    course_id: int
    title: str
    total: int
    delivered: int
    done: int
    next_at: datetime | None
    paused: bool
    completed: bool
    tz: str


async def progress(session: AsyncSession, user_id: int) -> dict[int, CourseProgress]:
    user = await session.get(User, user_id)
    tz = user.timezone if user and user.timezone else _config["timezone"]
    lesson_count = (
        select(func.count(Lesson.id)).where(Lesson.course_id == Enrollment.course_id)
    ).scalar_subquery()
    rows = await session.execute(
        select(Enrollment, Course.title, lesson_count)
        .join(Course, Course.id == Enrollment.course_id)
        .where(Enrollment.user_id == user_id)
    )
    out: dict[int, CourseProgress] = {}
    for enrollment, title, total in rows:
        stats = (
            await session.execute(
                select(
                    func.count(Delivery.id).filter(Delivery.status == DeliveryStatus.SENT),
                    func.count(Delivery.id).filter(Delivery.done_at.is_not(None)),
                    func.min(Delivery.due_at).filter(Delivery.status == DeliveryStatus.PENDING),
                ).where(Delivery.enrollment_id == enrollment.id)
            )
        ).one()
        out[enrollment.course_id] = CourseProgress(
            course_id=enrollment.course_id,
            title=title,
            total=int(total or 0),
            delivered=int(stats[0] or 0),
            done=int(stats[1] or 0),
            next_at=_aware(stats[2]),
            paused=enrollment.paused_at is not None,
            completed=enrollment.completed_at is not None,
            tz=tz,
        )
    return out


def _aware(value: datetime | None) -> datetime | None:
    # Aggregates bypass the column type, so SQLite hands back a naive (UTC) value or a string.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def local_time(when: datetime, tz: str) -> str:
    return when.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M")


# --- what the worker sends ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LessonView:
    """One lesson as the learner will get it; the renderer turns it into a message."""

    delivery_id: int
    course_title: str
    lesson_title: str
    number: int  # 1-based position in the course
    total: int
    kind: str
    text: str | None
    file_id: str | None
    caption: str | None
    protect_content: bool
    # The learner's chosen language and Telegram's language_code; the renderer picks.
    language: str | None
    language_code: str | None

    @classmethod
    def of(
        cls,
        lesson: Lesson,
        course: Course,
        *,
        number: int,
        total: int,
        delivery_id: int = 0,
        learner: User | None = None,
    ) -> LessonView:
        """The one place a lesson becomes what is sent: the worker and /preview use it."""
        return cls(
            delivery_id=delivery_id,
            course_title=course.title,
            lesson_title=lesson.title,
            number=number,
            total=total,
            kind=lesson.content_type,
            text=lesson.text,
            file_id=lesson.file_id,
            caption=lesson.caption,
            protect_content=course.protect_content,
            language=learner.language if learner else None,
            language_code=learner.language_code if learner else None,
        )
