"""Payment support: who sold a learner what, so /paysupport can put them in touch.

Refunds are the creator's to give (/refund), so the learner is pointed at the creator of
each purchase rather than at the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Creator, Order, OrderStatus, Plan, ProductKind, User

RECENT = 5


@dataclass(frozen=True, slots=True)
class Purchase:
    order_ref: str
    title: str
    status: str  # paid | refunded
    paid_at: datetime | None
    creator_user_id: int
    creator_name: str
    creator_username: str | None


async def recent_purchases(
    session: AsyncSession, user_id: int, limit: int = RECENT
) -> list[Purchase]:
    """The learner's latest paid or refunded orders, newest first, with their creators."""
    creator_user = User.__table__.alias("creator_user")
    title = func.coalesce(Course.title, Plan.title, "")
    rows = await session.execute(
        select(
            Order.public_ref,
            title,
            Order.status,
            Order.paid_at,
            Creator.user_id,
            Creator.display_name,
            creator_user.c.username,
        )
        .join(Creator, Creator.id == Order.creator_id)
        .join(creator_user, creator_user.c.id == Creator.user_id)
        .outerjoin(
            Course,
            and_(Order.product_kind == ProductKind.COURSE, Course.id == Order.product_id),
        )
        .outerjoin(Plan, and_(Order.product_kind == ProductKind.PLAN, Plan.id == Order.product_id))
        .where(
            Order.user_id == user_id,
            Order.status.in_((OrderStatus.PAID, OrderStatus.REFUNDED)),
        )
        .order_by(func.coalesce(Order.paid_at, Order.created_at).desc(), Order.id.desc())
        .limit(limit)
    )
    return [Purchase(*row) for row in rows.tuples()]
