"""Entitlements: grant, extend, revoke. The one place that decides who may have what.

Other features react to access changes through hooks instead of being called by name:
the drip scheduler enrolls a learner when a course is granted, the groups feature sends
an invite when a plan is granted and removes the member when it is revoked. Hooks run
inside the caller's transaction, so a grant and its consequences commit together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Entitlement, utcnow


@dataclass(frozen=True, slots=True)
class AccessChange:
    user_id: int
    product_kind: str
    product_id: int
    entitlement_id: int
    expires_at: datetime | None
    at: datetime


Hook = Callable[[AsyncSession, AccessChange], Awaitable[None]]
_on_grant: dict[str, list[Hook]] = {}
_on_revoke: dict[str, list[Hook]] = {}


def on_grant(product_kind: str, hook: Hook) -> None:
    if hook not in _on_grant.setdefault(product_kind, []):
        _on_grant[product_kind].append(hook)


def on_revoke(product_kind: str, hook: Hook) -> None:
    if hook not in _on_revoke.setdefault(product_kind, []):
        _on_revoke[product_kind].append(hook)


async def get_entitlement(
    session: AsyncSession, user_id: int, product_kind: str, product_id: int
) -> Entitlement | None:
    return await session.scalar(
        select(Entitlement).where(
            Entitlement.user_id == user_id,
            Entitlement.product_kind == product_kind,
            Entitlement.product_id == product_id,
        )
    )


async def has_access(
    session: AsyncSession,
    user_id: int,
    product_kind: str,
    product_id: int,
    now: datetime | None = None,
) -> bool:
    ent = await get_entitlement(session, user_id, product_kind, product_id)
    return ent is not None and ent.is_active(now or utcnow())


async def holders(
    session: AsyncSession,
    user_ids: Collection[int],
    product_kind: str,
    product_ids: Collection[int],
    now: datetime,
) -> set[int]:
    """Of `user_ids`, those with access to any of `product_ids` at `now`: one query for
    many users (a broadcast's next batch), the same rule as Entitlement.is_active."""
    if not user_ids or not product_ids:
        return set()
    rows = await session.scalars(
        select(Entitlement.user_id).where(
            Entitlement.user_id.in_(list(user_ids)),
            Entitlement.product_kind == product_kind,
            Entitlement.product_id.in_(list(product_ids)),
            Entitlement.revoked_at.is_(None),
            Entitlement.starts_at <= now,
            or_(Entitlement.expires_at.is_(None), Entitlement.expires_at > now),
        )
    )
    return set(rows)


async def grant(
    session: AsyncSession,
    user_id: int,
    product_kind: str,
    product_id: int,
    *,
    days: int | None,
    now: datetime | None = None,
    source_order_id: int | None = None,
    is_trial: bool = False,
) -> Entitlement:
    """Give access for `days` (None = lifetime). A renewal extends from max(now, expiry).

    Extending never shortens: lifetime stays lifetime, and an active period is added to,
    not overwritten.
    """
    now = now or utcnow()
    ent = await get_entitlement(session, user_id, product_kind, product_id)
    if ent is None:
        ent = Entitlement(
            user_id=user_id,
            product_kind=product_kind,
            product_id=product_id,
            starts_at=now,
            expires_at=None if days is None else now + timedelta(days=days),
            source_order_id=source_order_id,
            is_trial=is_trial,
        )
        session.add(ent)
    else:
        was_active = ent.is_active(now)
        if ent.revoked_at is not None or not was_active:
            ent.revoked_at = None
            ent.starts_at = now
            ent.expires_at = None if days is None else now + timedelta(days=days)
        elif days is None:
            ent.expires_at = None
        elif ent.expires_at is not None:
            ent.expires_at = max(now, ent.expires_at) + timedelta(days=days)
        ent.is_trial = is_trial
        if source_order_id is not None:
            ent.source_order_id = source_order_id
    await session.flush()
    change = AccessChange(user_id, product_kind, product_id, ent.id, ent.expires_at, now)
    for hook in _on_grant.get(product_kind, []):
        await hook(session, change)
    return ent


async def revoke(
    session: AsyncSession,
    user_id: int,
    product_kind: str,
    product_id: int,
    now: datetime | None = None,
) -> Entitlement | None:
    now = now or utcnow()
    ent = await get_entitlement(session, user_id, product_kind, product_id)
    if ent is None or ent.revoked_at is not None:
        return ent
    ent.revoked_at = now
    await session.flush()
    change = AccessChange(user_id, product_kind, product_id, ent.id, ent.expires_at, now)
    for hook in _on_revoke.get(product_kind, []):
        await hook(session, change)
    return ent
