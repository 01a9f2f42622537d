"""The learner's catalog: pages, course cards and the library. Read-only; never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Creator, Entitlement, Lesson, ProductKind, utcnow


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


_SUMMARY_COLUMNS = (
    Course.id,
    Course.title,
    Course.price_minor,
    Course.currency,
    Course.stars_price,
    Course.language,
)


async def catalog_page(session: AsyncSession, page: int, size: int) -> CatalogPage:
    total = await session.scalar(select(func.count()).where(Course.published.is_(True))) or 0
    pages = max(1, -(-total // size))
    page = min(max(page, 0), pages - 1)
    rows = await session.execute(
        select(*_SUMMARY_COLUMNS)
        .where(Course.published.is_(True))
        .order_by(Course.id)
        .limit(size)
        .offset(page * size)
    )
    items = [CourseSummary(*row) for row in rows]
    return CatalogPage(items=items, page=page, pages=pages, total=total)


async def summaries(session: AsyncSession, ids: list[int]) -> list[CourseSummary]:
    """Published courses by id, in the order given (search and recommendation results)."""
    if not ids:
        return []
    rows = await session.execute(
        select(*_SUMMARY_COLUMNS).where(Course.id.in_(ids), Course.published.is_(True))
    )
    by_id = {row.id: CourseSummary(*row) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def _active_entitlement(user_id: int, now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        Entitlement.user_id == user_id,
        Entitlement.revoked_at.is_(None),
        Entitlement.starts_at <= now,
        or_(Entitlement.expires_at.is_(None), Entitlement.expires_at > now),
    )


async def course_card(
    session: AsyncSession, course_id: int, user_id: int, now: datetime | None = None
) -> CourseCard | None:
    """The card of a published course, or None (missing, unpublished or forged id)."""
    now = now or utcnow()
    lessons = select(func.count(Lesson.id)).where(Lesson.course_id == Course.id).scalar_subquery()
    owned = (
        select(Entitlement.id)
        .where(
            _active_entitlement(user_id, now),
            Entitlement.product_kind == ProductKind.COURSE,
            Entitlement.product_id == Course.id,
        )
        .exists()
    )
    row = (
        await session.execute(
            select(Course, Creator.display_name, lessons.label("n"), owned.label("owned"))
            .join(Creator, Creator.id == Course.creator_id)
            .where(Course.id == course_id, Course.published.is_(True))
        )
    ).first()
    if row is None:
        return None
    course: Course = row[0]
    return CourseCard(
        id=course.id,
        title=course.title,
        description=course.description,
        tags=list(course.tags or []),
        language=course.language,
        creator_id=course.creator_id,
        creator_name=row[1],
        price_minor=course.price_minor,
        currency=course.currency,
        stars_price=course.stars_price,
        accepts_stars=course.accepts_stars,
        accepts_card=course.accepts_card,
        lesson_count=int(row[2] or 0),
        owned=bool(row[3]),
    )


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
