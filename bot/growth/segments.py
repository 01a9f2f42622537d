"""Who a creator's broadcast reaches: segments of their own audience, computed only from
their own products (a course or plan id is checked to be theirs before it gets here;
"all" means every product with their creator id, never anyone else's).

A segment is a query of distinct user ids. Learners who blocked the bot are counted
apart and never queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.dashboard import at_risk_learners
from bot.models import (
    Course,
    Creator,
    Enrollment,
    Entitlement,
    FunnelProgress,
    Plan,
    ProductKind,
    User,
)


class Segment(StrEnum):
    LEARNERS = "learners"  # an active entitlement to the course
    VIEWED = "viewed"  # opened the card, never bought
    FINISHED = "finished"  # completed the course
    AT_RISK = "risk"  # no Done for 7 days (the dashboard's definition)
    MEMBERS = "members"  # an active plan (trials included)
    EXPIRED = "expired"  # had the plan, it ran out, not renewed
    TRIAL = "trial"  # on a free trial now


COURSE_SEGMENTS = (Segment.LEARNERS, Segment.VIEWED, Segment.FINISHED, Segment.AT_RISK)
PLAN_SEGMENTS = (Segment.MEMBERS, Segment.EXPIRED, Segment.TRIAL)
# How long an expired member stays in "expired": older lapses are not an audience.
EXPIRED_WINDOW = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Audience:
    segment: Segment
    kind: str  # ProductKind of the segment
    product_ids: tuple[int, ...]

    @property
    def access_check(self) -> dict[str, Any] | None:
        """What each message re-checks at send time (access follows money): a learner
        refunded since the fan-out is skipped. None for audiences that never paid."""
        if self.segment in (Segment.LEARNERS, Segment.AT_RISK):
            return {"kind": ProductKind.COURSE, "ids": list(self.product_ids)}
        if self.segment in (Segment.MEMBERS, Segment.TRIAL):
            return {"kind": ProductKind.PLAN, "ids": list(self.product_ids)}
        return None


@dataclass(frozen=True, slots=True)
class AudienceSize:
    reachable: int
    blocked: int


def kind_of(segment: Segment) -> str:
    return ProductKind.PLAN if segment in PLAN_SEGMENTS else ProductKind.COURSE


async def own_product_ids(session: AsyncSession, creator: Creator, kind: str) -> tuple[int, ...]:
    model: Any = Plan if kind == ProductKind.PLAN else Course
    rows = await session.scalars(
        select(model.id).where(model.creator_id == creator.id).order_by(model.id)
    )
    return tuple(rows)


async def audience(
    session: AsyncSession, creator: Creator, segment: Segment, product_id: int | None
) -> Audience:
    """`product_id` must already be the creator's (authoring.own_course, owned_plan);
    None means all of their own products of the segment's kind."""
    kind = kind_of(segment)
    ids = (product_id,) if product_id else await own_product_ids(session, creator, kind)
    return Audience(segment, kind, ids)


def _active(now: datetime) -> Any:
    e = Entitlement
    return and_(
        e.revoked_at.is_(None),
        e.starts_at <= now,
        or_(e.expires_at.is_(None), e.expires_at > now),
    )


def _user_ids(aud: Audience, now: datetime) -> Any:
    ids = list(aud.product_ids) or [-1]
    e = Entitlement
    if aud.segment in (Segment.LEARNERS, Segment.MEMBERS, Segment.TRIAL):
        query = select(e.user_id).where(
            e.product_kind == aud.kind, e.product_id.in_(ids), _active(now)
        )
        if aud.segment == Segment.TRIAL:
            query = query.where(e.is_trial.is_(True))
        return query
    if aud.segment == Segment.EXPIRED:
        active = (
            select(Entitlement.id)
            .where(
                Entitlement.user_id == e.user_id,
                Entitlement.product_kind == ProductKind.PLAN,
                Entitlement.product_id.in_(ids),
                _active(now),
            )
            .correlate(e)
        )
        return select(e.user_id).where(
            e.product_kind == ProductKind.PLAN,
            e.product_id.in_(ids),
            e.revoked_at.is_(None),
            e.expires_at.is_not(None),
            e.expires_at <= now,
            e.expires_at > now - EXPIRED_WINDOW,
            ~exists(active),
        )
    if aud.segment == Segment.VIEWED:
        f = FunnelProgress
        owns = (
            select(Entitlement.id)
            .where(
                Entitlement.user_id == f.user_id,
                Entitlement.product_kind == ProductKind.COURSE,
                Entitlement.product_id == f.product_id,
                _active(now),
            )
            .correlate(f)
        )
        return select(f.user_id).where(
            f.product_kind == ProductKind.COURSE,
            f.product_id.in_(ids),
            f.viewed_at.is_not(None),
            f.paid_at.is_(None),
            ~exists(owns),
        )
    if aud.segment == Segment.FINISHED:
        return select(Enrollment.user_id).where(
            Enrollment.course_id.in_(ids), Enrollment.completed_at.is_not(None)
        )
    sub = at_risk_learners(ids, now).subquery()
    return select(sub.c.user_id)


def _recipients(aud: Audience, now: datetime, *, blocked: bool) -> Any:
    ids = _user_ids(aud, now).subquery()
    return (
        select(User.id)
        .where(User.id.in_(select(ids.c[0])), User.is_blocked.is_(blocked))
        .order_by(User.id)
    )


async def size(session: AsyncSession, aud: Audience, now: datetime) -> AudienceSize:
    async def count(blocked: bool) -> int:
        sub = _recipients(aud, now, blocked=blocked).subquery()
        return int(await session.scalar(select(func.count()).select_from(sub)) or 0)

    return AudienceSize(await count(False), await count(True))


async def recipients(session: AsyncSession, aud: Audience, now: datetime) -> list[int]:
    return list(await session.scalars(_recipients(aud, now, blocked=False)))
