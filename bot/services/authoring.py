"""Creators at work: courses, lessons, release rules, previews and broadcasts.

Who is a creator: anyone with a Creator row (self-service through /becomecreator), and
the platform owners (ADMIN_IDS), who get an owner row on first use. Every call checks
rights: a creator acts only on their own courses; an owner on every course. Functions
return None (or False) for "not yours or not there", never a different error, so a
forged id tells the caller nothing.

After a catalog change the caller invalidates the search index; after a schedule change
these functions re-schedule the enrolled learners' future lessons themselves.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot import text as tg_text
from bot.marketplace import profiles
from bot.models import (
    ContentType,
    Course,
    Creator,
    CreatorRole,
    Delivery,
    DeliveryStatus,
    Enrollment,
    Job,
    Lesson,
    ReleaseRule,
    User,
    utcnow,
)
from bot.money import minor_digits
from bot.scheduler import broadcast
from bot.services import drip
from bot.services.users import creator_for as creator_for  # the handlers' way in
from bot.services.users import ensure_creator, get_creator
from bot.text import shorten

MAX_TITLE = 200
MAX_TAGS = 12
# A lesson's title is its first line, as long as a line of /lessons can comfortably show.
LESSON_TITLE_CHARS = 80


async def become_creator(session: AsyncSession, user: User) -> tuple[Creator, bool]:
    existing = await get_creator(session, user.id)
    if existing is not None:
        return existing, False
    return await ensure_creator(session, user), True


async def own_course(session: AsyncSession, creator: Creator, course_id: int) -> Course | None:
    course = await session.get(Course, course_id)
    if course is None:
        return None
    if course.creator_id != creator.id and creator.role != CreatorRole.OWNER:
        return None
    return course


async def own_lesson(
    session: AsyncSession, creator: Creator, lesson_id: int
) -> tuple[Lesson, Course] | None:
    lesson = await session.get(Lesson, lesson_id)
    if lesson is None:
        return None
    course = await own_course(session, creator, lesson.course_id)
    return None if course is None else (lesson, course)


# --- courses --------------------------------------------------------------------------


@dataclass
class CourseDraft:
    title: str = ""
    description: str = ""
    tags: list[str] | None = None
    language: str = "en"
    price_minor: int = 0
    currency: str = "USD"
    stars_price: int = 0


def parse_tags(text: str) -> list[str]:
    tags = [t.strip().lstrip("#").lower() for t in re.split(r"[,#\n]", text)]
    seen: list[str] = []
    for tag in tags:
        if tag and tag not in seen and tag != "-":
            seen.append(tag[:32])
    return seen[:MAX_TAGS]


def parse_price(text: str) -> tuple[int, str] | None:
    """'19.99 USD' / '0' / '1500 JPY' → (minor units, currency); None when unreadable."""
    parts = text.replace(",", ".").split()
    if not parts or len(parts) > 2:
        return None
    currency = parts[1].upper() if len(parts) == 2 else "USD"
    if not re.fullmatch(r"[A-Z]{3}", currency) or currency == "XTR":
        return None
    try:
        amount = Decimal(parts[0])
    except InvalidOperation:
        return None
    # NaN and Infinity are Decimals too; 1e308 is finite but no price.
    if not amount.is_finite() or amount < 0 or amount > parsing.MAX_PRICE_MAJOR:
        return None
    minor = amount * (10 ** minor_digits(currency))
    if minor != minor.to_integral_value():
        return None
    return int(minor), currency


def parse_stars(text: str) -> int | None:
    return parsing.whole(text, 0, parsing.MAX_STARS)


async def create_course(session: AsyncSession, creator: Creator, draft: CourseDraft) -> Course:
    """A new course is a draft: it has no lessons yet, and set_published wants one."""
    course = Course(
        creator_id=creator.id,
        title=draft.title[:MAX_TITLE],
        description=draft.description,
        tags=list(draft.tags or []),
        language=draft.language,
        price_minor=draft.price_minor,
        currency=draft.currency,
        stars_price=draft.stars_price,
        accepts_card=draft.price_minor > 0,
        accepts_stars=draft.stars_price > 0 or draft.price_minor == 0,
        published=False,
        protect_content=True,
    )
    session.add(course)
    await session.flush()
    return course


EDITABLE = ("title", "description", "tags", "language", "price", "stars")


async def edit_course(
    session: AsyncSession, creator: Creator, course_id: int, field: str, value: str
) -> Course | bool | None:
    """None: not yours; False: the value does not parse; else the updated course."""
    course = await own_course(session, creator, course_id)
    if course is None:
        return None
    value = value.strip()
    if field == "title" and value:
        course.title = value[:MAX_TITLE]
    elif field == "description":
        course.description = value
    elif field == "tags":
        course.tags = parse_tags(value)
    elif field == "language" and value in ("en", "zh"):
        course.language = value
    elif field == "price" and (price := parse_price(value)) is not None:
        course.price_minor, course.currency = price
        course.accepts_card = course.price_minor > 0
    elif field == "stars" and (stars := parse_stars(value)) is not None:
        course.stars_price = stars
        course.accepts_stars = stars > 0
    else:
        return False
    await session.flush()
    return course


async def lesson_count(session: AsyncSession, course_id: int) -> int:
    count = await session.scalar(select(func.count(Lesson.id)).where(Lesson.course_id == course_id))
    return int(count or 0)


async def set_published(
    session: AsyncSession, creator: Creator, course_id: int, published: bool
) -> Course | bool | None:
    """None: not yours; False: a course without lessons, which would sell nothing, stays a
    draft; else the course."""
    course = await own_course(session, creator, course_id)
    if course is None:
        return None
    if published and await lesson_count(session, course.id) == 0:
        return False
    newly = published and not course.published
    course.published = published
    await session.flush()
    if newly:
        # Followers hear of it once, through the scheduler, after this commits.
        await profiles.course_published(session, course)
    return course


async def set_protect(
    session: AsyncSession, creator: Creator, course_id: int, protect: bool
) -> Course | None:
    course = await own_course(session, creator, course_id)
    if course is not None:
        course.protect_content = protect
        await session.flush()
    return course


@dataclass(frozen=True, slots=True)
class CourseBrief:
    id: int
    title: str
    published: bool
    lessons: int
    learners: int


async def my_courses(session: AsyncSession, creator: Creator) -> list[CourseBrief]:
    lessons = select(func.count(Lesson.id)).where(Lesson.course_id == Course.id).scalar_subquery()
    learners = (
        select(func.count(Enrollment.id)).where(Enrollment.course_id == Course.id)
    ).scalar_subquery()
    rows = await session.execute(
        select(Course.id, Course.title, Course.published, lessons, learners)
        .where(Course.creator_id == creator.id)
        .order_by(Course.id)
    )
    return [CourseBrief(r[0], r[1], r[2], int(r[3] or 0), int(r[4] or 0)) for r in rows]


# --- lessons --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LessonContent:
    kind: str  # ContentType
    text: str | None = None
    file_id: str | None = None
    caption: str | None = None


def lesson_title(content: LessonContent, number: int) -> str:
    source = content.text or content.caption or ""
    # Content is Telegram HTML; the title is plain text (escaped again where it is shown).
    first = html.unescape(re.sub(r"<[^>]+>", "", source)).strip().split("\n")[0]
    return shorten(first.strip(), LESSON_TITLE_CHARS) or f"#{number}"


# Room for the label of the heading ("Lesson 12 of 30", "第 12 节，共 30 节") up to four-
# digit numbers in either language, in UTF-16 code units.
LABEL_ALLOWANCE = 32


class LastLessonOfPublished(ValueError):
    """The only lesson of a published course: deleting it would leave a course on sale
    that delivers nothing, which publishing already refuses."""


class LessonTooLong(ValueError):
    """A lesson that Telegram would refuse on every delivery: its text (or caption) and
    the heading the bot puts above it exceed Telegram's limit."""

    def __init__(self, length: int, limit: int, room: int) -> None:
        super().__init__(f"{length} > {limit}")
        self.length = length  # of the whole delivered message
        self.limit = limit  # Telegram's: 4096 for a text, 1024 for a caption
        self.room = room  # what is left for the creator's own text


def check_deliverable(content: LessonContent, course_title: str, lesson_title: str) -> None:
    """Refuse a lesson whose delivery can never fit, measured as Telegram measures: the
    heading of bot.scheduler.render.lesson_heading plus the content, after the HTML is
    parsed, in UTF-16 code units."""
    body = content.text if content.kind == ContentType.TEXT else content.caption
    limit = tg_text.TEXT_LIMIT if content.kind == ContentType.TEXT else tg_text.CAPTION_LIMIT
    # "<course>\n<label> · <lesson title>\n\n<body>"
    heading = (
        tg_text.utf16_len(course_title) + 1 + LABEL_ALLOWANCE + 3 + tg_text.utf16_len(lesson_title)
    )
    length = heading + (2 + tg_text.visible_length(body) if body else 0)
    if length > limit:
        raise LessonTooLong(length, limit, max(0, limit - heading - 2))


async def lessons_of(session: AsyncSession, course_id: int) -> list[Lesson]:
    rows = await session.scalars(
        select(Lesson).where(Lesson.course_id == course_id).order_by(Lesson.position, Lesson.id)
    )
    return list(rows)


async def add_lesson(
    session: AsyncSession,
    creator: Creator,
    course_id: int,
    content: LessonContent,
    now: datetime | None = None,
) -> Lesson | None:
    """Append a lesson. Default rule: lesson 1 at once, then one a day.

    Raises LessonTooLong for a lesson that could never be delivered."""
    course = await own_course(session, creator, course_id)
    if course is None:
        return None
    existing = await lessons_of(session, course_id)
    number = len(existing) + 1
    check_deliverable(content, course.title, lesson_title(content, number))
    lesson = Lesson(
        course_id=course_id,
        position=(existing[-1].position + 1) if existing else 1,
        title=lesson_title(content, number),
        content_type=content.kind,
        text=content.text,
        file_id=content.file_id,
        caption=content.caption,
        release_rule=ReleaseRule.AFTER_DAYS,
        release_days=number - 1,
    )
    session.add(lesson)
    await session.flush()
    await drip.reschedule_course(session, course_id, now or utcnow())
    return lesson


async def replace_content(
    session: AsyncSession,
    creator: Creator,
    lesson_id: int,
    content: LessonContent,
    now: datetime | None = None,
) -> Lesson | None:
    """New content for a lesson; learners who already got it are not sent it again.

    Raises LessonTooLong for content that could never be delivered."""
    owned = await own_lesson(session, creator, lesson_id)
    if owned is None:
        return None
    lesson, course = owned
    check_deliverable(content, course.title, lesson_title(content, lesson.position))
    lesson.content_type = content.kind
    lesson.text = content.text
    lesson.file_id = content.file_id
    lesson.caption = content.caption
    lesson.title = lesson_title(content, lesson.position)
    # Telegram refused the old content (say, a bad file): the fixed lesson goes out now.
    await session.execute(
        update(Delivery)
        .where(Delivery.lesson_id == lesson.id, Delivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.PENDING, last_error=None, due_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return lesson


async def delete_lesson(
    session: AsyncSession, creator: Creator, lesson_id: int, now: datetime | None = None
) -> Course | None:
    owned = await own_lesson(session, creator, lesson_id)
    if owned is None:
        return None
    lesson, course = owned
    if course.published and await lesson_count(session, course.id) <= 1:
        raise LastLessonOfPublished(course.id)
    await drip.forget_lesson(session, lesson.id)
    await session.delete(lesson)
    await session.flush()
    for position, other in enumerate(await lessons_of(session, course.id), start=1):
        other.position = position
    await session.flush()
    await drip.reschedule_course(session, course.id, now or utcnow())
    return course


async def move_lesson(
    session: AsyncSession,
    creator: Creator,
    lesson_id: int,
    delta: int,
    now: datetime | None = None,
) -> Course | None:
    owned = await own_lesson(session, creator, lesson_id)
    if owned is None:
        return None
    _lesson, course = owned
    lessons = await lessons_of(session, course.id)
    index = next(i for i, item in enumerate(lessons) if item.id == lesson_id)
    target = min(max(index + delta, 0), len(lessons) - 1)
    lessons.insert(target, lessons.pop(index))
    for position, item in enumerate(lessons, start=1):
        item.position = position
    await session.flush()
    await drip.reschedule_course(session, course.id, now or utcnow())
    return course


@dataclass(frozen=True, slots=True)
class Release:
    rule: str
    days: int = 0
    at: datetime | None = None  # wall clock (see bot.services.drip)


def parse_release(text: str) -> Release | None:
    """'days 3' | 'at 2026-12-01 10:00' | 'after' → a Release; None when unreadable."""
    words = text.split()
    if not words:
        return None
    head = words[0].lower()
    if head in ("days", "day") and len(words) == 2:
        days = parsing.days(words[1], low=0)
        return Release(ReleaseRule.AFTER_DAYS, days=days) if days is not None else None
    if head == "at" and len(words) in (2, 3):
        try:
            wall = datetime.strptime(
                " ".join(words[1:]), "%Y-%m-%d %H:%M" if len(words) == 3 else "%Y-%m-%d"
            )
        except ValueError:
            return None
        # Year 9999 parses, but adding a time zone or a day to it overflows when a
        # learner enrolls: refuse it here.
        if not parsing.date_in_range(wall):
            return None
        return Release(ReleaseRule.AT_DATE, at=wall.replace(tzinfo=UTC))
    if head in ("after", "previous", "done"):
        return Release(ReleaseRule.AFTER_PREVIOUS)
    return None


async def set_release(
    session: AsyncSession,
    creator: Creator,
    lesson_id: int,
    release: Release,
    now: datetime | None = None,
) -> tuple[Lesson, int] | None:
    """Change a lesson's rule; returns it and how many enrolled learners were re-planned."""
    owned = await own_lesson(session, creator, lesson_id)
    if owned is None:
        return None
    lesson, course = owned
    lesson.release_rule = release.rule
    if release.rule == ReleaseRule.AFTER_DAYS:
        lesson.release_days = release.days
        lesson.release_at = None
    elif release.rule == ReleaseRule.AT_DATE:
        lesson.release_at = release.at
    await session.flush()
    count = await drip.reschedule_course(session, course.id, now or utcnow())
    return lesson, count


# --- preview --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewItem:
    number: int
    lesson_id: int
    title: str
    rule: str
    days: int
    at: datetime | None
    available: bool
    day: int | None  # the day it arrives, for a learner who enrolls now and keeps up


async def preview(
    session: AsyncSession,
    creator: Creator,
    course_id: int,
    day: int,
    timezone: str,
    now: datetime | None = None,
) -> list[PreviewItem] | None:
    """What a learner who enrolls now would have on day `day`, if they mark each lesson
    done as soon as it arrives. Quiet hours are ignored: they move a lesson by hours."""
    course = await own_course(session, creator, course_id)
    if course is None:
        return None
    now = now or utcnow()
    prefs = drip.Prefs(drip.zone(timezone), 0, 0)
    items: list[PreviewItem] = []
    previous: datetime | None = None
    for index, lesson in enumerate(await lessons_of(session, course_id)):
        nominal = drip.nominal_release(
            lesson, now, prefs, first=index == 0, previous_done_at=previous
        )
        due = max(nominal or now, now, previous or now)
        previous = due
        arrives = (due - now) // timedelta(days=1) if due > now else 0
        items.append(
            PreviewItem(
                number=index + 1,
                lesson_id=lesson.id,
                title=lesson.title,
                rule=lesson.release_rule,
                days=lesson.release_days,
                at=lesson.release_at,
                available=due <= now + timedelta(days=day),
                day=arrives,
            )
        )
    return items


@dataclass(frozen=True, slots=True)
class PreviewLesson:
    """One lesson as a learner on day `day` would get it, and where the creator goes next."""

    view: drip.LessonView
    previous: int | None  # number of the lesson before it that is there on that day
    following: int | None


async def preview_lesson(
    session: AsyncSession,
    creator: Creator,
    course_id: int,
    day: int,
    number: int,
    timezone: str,
    now: datetime | None = None,
) -> PreviewLesson | None:
    """Lesson `number` (1-based) as the learner of `preview` would have it on day `day`;
    None when the course is not the creator's, or the learner would not have it yet.

    Nothing is recorded: no enrollment, no delivery, no progress for the creator."""
    items = await preview(session, creator, course_id, day, timezone, now)
    if items is None or not 1 <= number <= len(items) or not items[number - 1].available:
        return None
    lesson = await session.get(Lesson, items[number - 1].lesson_id)
    course = await session.get(Course, course_id)
    if lesson is None or course is None:
        return None
    # No delivery behind it (delivery_id 0), and the creator's own language.
    view = drip.LessonView.of(lesson, course, number=number, total=len(items))
    available = [i.number for i in items if i.available]
    before = [n for n in available if n < number]
    after = [n for n in available if n > number]
    return PreviewLesson(view, before[-1] if before else None, after[0] if after else None)


# --- broadcasts -----------------------------------------------------------------------


class BroadcastTooLong(ValueError):
    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"{length} > {limit}")
        self.length = length
        self.limit = limit


async def start_broadcast(
    session: AsyncSession,
    creator: Creator,
    course_id: int,
    text: str,
    *,
    chat_id: int,
    locale: str,
    per_second: float,
    now: datetime | None = None,
) -> broadcast.BroadcastPlan | None:
    """Queue `text` (Telegram HTML) for every learner. Raises BroadcastTooLong when
    Telegram would refuse it to each of them."""
    course = await own_course(session, creator, course_id)
    if course is None:
        return None
    length = tg_text.visible_length(text)
    if length > tg_text.TEXT_LIMIT:
        raise BroadcastTooLong(length, tg_text.TEXT_LIMIT)
    return await broadcast.queue_broadcast(
        session,
        course_id=course_id,
        text=text,
        creator_chat_id=chat_id,
        locale=locale,
        protect_content=course.protect_content,
        per_second=per_second,
        now=now or utcnow(),
    )


async def attach_status(session: AsyncSession, job_id: int, message_id: int) -> None:
    """Remember the creator's status message, so the broadcast can edit in its progress."""
    job = await session.get(Job, job_id)
    if job is not None:
        broadcast.attach_status_message(job, message_id)
        await session.flush()


CONTENT_KINDS = tuple(k.value for k in ContentType)
