"""The learner's catalog: pages, course cards and the library. Read-only; never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
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


def _card_statement() -> Select[*tuple[Any, ...]]:
    # Built once: constructing this expression per call costs more than running it.
    # Plain columns, not the ORM entity: the card needs no identity map.
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
            lessons.scalar_subquery().label("lesson_count"),
            owned.label("owned"),
        )
        .join(Creator, Creator.id == Course.creator_id)
        .where(Course.id == bindparam("course_id"), Course.published.is_(True))
    )


_CARD = _card_statement()


async def course_card(
    session: AsyncSession, course_id: int, user_id: int, now: datetime | None = None
) -> CourseCard | None:
    """The card of a published course, or None (missing, unpublished or forged id)."""
    params = {"course_id": course_id, "user_id": user_id, "now": now or utcnow()}
    row = (await session.execute(_CARD, params)).first()
    if row is None:
        return None
    fields = row._asdict()
    fields["tags"] = list(fields["tags"] or [])
    fields["lesson_count"] = int(fields["lesson_count"] or 0)
    fields["owned"] = bool(fields["owned"])
    return CourseCard(**fields)


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
