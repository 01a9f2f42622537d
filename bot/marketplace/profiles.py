"""Creator profiles and follows, and the "new course" notice to followers.

A follower hears of a course once: the first publish queues one fan-out job (dedupe key
per course), which writes one job per follower (dedupe key per course and follower),
due at the end of the follower's quiet hours. The scheduler sends them through its
rate-limited sender; the text is rendered at send time in the follower's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.marketplace.reviews import bayesian
from bot.models import Course, Creator, Entitlement, Job, JobStatus, Plan, ProductKind, User, utcnow
from bot.models.marketplace import Follow, Review

MAX_BIO = 300
NEW_COURSE = "market.newcourse"
NEW_COURSE_NOTICE = "market.follower"


@dataclass(frozen=True, slots=True)
class ProductLine:
    id: int
    title: str


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    name: str
    bio: str
    photo_file_id: str | None
    courses: list[ProductLine]
    plans: list[ProductLine]
    reviews: int
    average: float  # plain mean over their courses' counted reviews; 0 without any
    rating: float  # Bayesian average, as the catalog sorts
    learners: int
    followers: int


async def profile(session: AsyncSession, creator_id: int) -> Profile | None:
    creator = await session.get(Creator, creator_id)
    if creator is None:
        return None
    courses = [
        ProductLine(i, t)
        for i, t in await session.execute(
            select(Course.id, Course.title)
            .where(Course.creator_id == creator_id, Course.published.is_(True))
            .order_by(Course.id)
        )
    ]
    plans = [
        ProductLine(i, t)
        for i, t in await session.execute(
            select(Plan.id, Plan.title)
            .where(Plan.creator_id == creator_id, Plan.published.is_(True))
            .order_by(Plan.id)
        )
    ]
    count, total = (
        await session.execute(
            select(func.count(Review.id), func.coalesce(func.sum(Review.rating), 0)).where(
                Review.creator_id == creator_id, Review.counted.is_(True), Review.hidden.is_(False)
            )
        )
    ).one()
    learners = await _learners(session, creator_id)
    followers = await session.scalar(
        select(func.count(Follow.id)).where(Follow.creator_id == creator_id)
    )
    return Profile(
        id=creator.id,
        name=creator.display_name,
        bio=creator.bio or "",
        photo_file_id=creator.photo_file_id,
        courses=courses,
        plans=plans,
        reviews=int(count),
        average=round(float(total) / int(count), 2) if count else 0.0,
        rating=round(bayesian(float(total), int(count)), 2),
        learners=learners,
        followers=int(followers or 0),
    )


async def _learners(session: AsyncSession, creator_id: int) -> int:
    """Distinct people who hold (or held, refunds apart) one of the creator's products."""
    course_ids = select(Course.id).where(Course.creator_id == creator_id)
    plan_ids = select(Plan.id).where(Plan.creator_id == creator_id)
    n = await session.scalar(
        select(func.count(distinct(Entitlement.user_id))).where(
            Entitlement.revoked_at.is_(None),
            (
                (Entitlement.product_kind == ProductKind.COURSE)
                & Entitlement.product_id.in_(course_ids)
            )
            | (
                (Entitlement.product_kind == ProductKind.PLAN)
                & Entitlement.product_id.in_(plan_ids)
            ),
        )
    )
    return int(n or 0)


async def set_bio(session: AsyncSession, creator: Creator, bio: str) -> bool:
    bio = bio.strip()
    if len(bio) > MAX_BIO:
        return False
    creator.bio = bio
    await session.flush()
    return True


async def set_photo(session: AsyncSession, creator: Creator, file_id: str | None) -> None:
    creator.photo_file_id = file_id
    await session.flush()


async def is_following(session: AsyncSession, user_id: int, creator_id: int) -> bool:
    found = await session.scalar(
        select(Follow.id).where(Follow.user_id == user_id, Follow.creator_id == creator_id)
    )
    return found is not None


async def follow(session: AsyncSession, user_id: int, creator_id: int) -> bool | None:
    """None: no such creator, or oneself; False: already following; True: now following."""
    creator = await session.get(Creator, creator_id)
    if creator is None or creator.user_id == user_id:
        return None
    if await is_following(session, user_id, creator_id):
        return False
    try:
        async with session.begin_nested():
            session.add(Follow(user_id=user_id, creator_id=creator_id))
    except IntegrityError:
        return False
    return True


async def unfollow(session: AsyncSession, user_id: int, creator_id: int) -> bool:
    row = await session.scalar(
        select(Follow).where(Follow.user_id == user_id, Follow.creator_id == creator_id)
    )
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


async def followed(session: AsyncSession, user_id: int) -> set[int]:
    return set(await session.scalars(select(Follow.creator_id).where(Follow.user_id == user_id)))


async def course_published(
    session: AsyncSession, course: Course, now: datetime | None = None
) -> None:
    """Called in the publishing transaction: queue the followers' notice, once per course."""
    now = now or utcnow()
    key = f"mk.new:{course.id}"
    if await session.scalar(select(Job.id).where(Job.dedupe_key == key)) is not None:
        return
    session.add(
        Job(
            kind=NEW_COURSE,
            dedupe_key=key,
            payload={"course_id": course.id, "creator_id": course.creator_id},
            run_at=now,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()


async def followers(session: AsyncSession, creator_id: int) -> list[User]:
    return list(
        await session.scalars(
            select(User)
            .join(Follow, Follow.user_id == User.id)
            .where(Follow.creator_id == creator_id, User.is_blocked.is_(False))
            .order_by(User.id)
        )
    )
