"""The learner's catalog: pages, course cards and the library. Read-only; never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Creator, Entitlement, Lesson, ProductKind, utcnow
from bot.models.base import UTCDateTime


@dataclass(frozen=True, slots=True)
class CourseSummary:
    id: int
    title: str
    price_minor: int
    currency: str
    stars_price: int
    language: str


@dataclass(frozen=True, slots=True)
class CatalogPage:
    items: list[CourseSummary]
    page: int  # 0-based, clamped to what exists
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class CourseCard:
    id: int
    title: str
    description: str
    tags: list[str]
    language: str
    creator_id: int
    creator_name: str
    price_minor: int
    currency: str
    stars_price: int
    accepts_stars: bool
    accepts_card: bool
    lesson_count: int
    owned: bool


@dataclass(frozen=True, slots=True)
class LibraryItem:
    course_id: int
    title: str
    expires_at: datetime | None


def _active_entitlement(user_id: Any, now: Any) -> ColumnElement[bool]:
    return and_(
        Entitlement.user_id == user_id,
        Entitlement.revoked_at.is_(None),
        Entitlement.starts_at <= now,
        or_(Entitlement.expires_at.is_(None), Entitlement.expires_at > now),
    )


# What a card shows of a course; plain columns, not the ORM entity: no identity map.
_CARD_COLUMNS = (
    Course.id,
    Course.title,
    Course.description,
    Course.tags,
    Course.language,
    Course.creator_id,
    Creator.display_name.label("creator_name"),
    Course.price_minor,
    Course.currency,
    Course.stars_price,
    Course.accepts_stars,
    Course.accepts_card,
)


def _card_statement() -> Select[*tuple[Any, ...]]:
    # Built once: constructing this expression per call costs more than running it.
    lessons = select(func.count(Lesson.id)).where(Lesson.course_id == Course.id)
    owned = (
        select(Entitlement.id)
        .where(
            _active_entitlement(bindparam("user_id"), bindparam("now", type_=UTCDateTime())),
            Entitlement.product_kind == ProductKind.COURSE,
            Entitlement.product_id == Course.id,
        )
        .exists()
    )
    return (
        select(
            *_CARD_COLUMNS,
            lessons.scalar_subquery().label("lesson_count"),
            owned.label("owned"),
        )
        .join(Creator, Creator.id == Course.creator_id)
        .where(Course.id == bindparam("course_id"), Course.published.is_(True))
    )


_CARD = _card_statement()


def _card(row: Row[*tuple[Any, ...]]) -> CourseCard:
    fields = row._asdict()
    fields["tags"] = list(fields["tags"] or [])
    fields["lesson_count"] = int(fields["lesson_count"] or 0)
    fields["owned"] = bool(fields["owned"])
    return CourseCard(**fields)


async def course_card(
    session: AsyncSession, course_id: int, user_id: int, now: datetime | None = None
) -> CourseCard | None:
    """The card of a published course, or None (missing, unpublished or forged id)."""
    params = {"course_id": course_id, "user_id": user_id, "now": now or utcnow()}
    row = (await session.execute(_CARD, params)).first()
    return None if row is None else _card(row)


async def published_cards(session: AsyncSession) -> list[CourseCard]:
    """Every published course's card as someone who does not own it sees it, by id."""
    lessons = (
        select(Lesson.course_id, func.count(Lesson.id).label("n"))
        .group_by(Lesson.course_id)
        .subquery()
    )
    rows = await session.execute(
        select(*_CARD_COLUMNS, lessons.c.n.label("lesson_count"), false().label("owned"))
        .join(Creator, Creator.id == Course.creator_id)
        .outerjoin(lessons, lessons.c.course_id == Course.id)
        .where(Course.published.is_(True))
        .order_by(Course.id)
    )
    return [_card(r) for r in rows]


async def library(
    session: AsyncSession, user_id: int, now: datetime | None = None
) -> list[LibraryItem]:
    """Courses the learner may open now."""
    now = now or utcnow()
    rows = await session.execute(
        select(Course.id, Course.title, Entitlement.expires_at)
        .join(
            Entitlement,
            and_(
                Entitlement.product_kind == ProductKind.COURSE,
                Entitlement.product_id == Course.id,
            ),
        )
        .where(_active_entitlement(user_id, now))
        .order_by(Entitlement.starts_at.desc(), Course.id)
    )
    return [LibraryItem(course_id=r[0], title=r[1], expires_at=r[2]) for r in rows]
