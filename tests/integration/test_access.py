"""Entitlements: renewals extend from max(now, expiry), lifetime wins, revoke and regrant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import ProductKind
from bot.services import access
from bot.services.users import TelegramProfile, upsert_user

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PLAN = ProductKind.PLAN


async def _user(db: AsyncSession) -> int:
    user, _ = await upsert_user(db, TelegramProfile(id=77, first_name="Ann"), now=T0)
    return user.id


async def test_renewal_extends_never_overwrites(db: AsyncSession) -> None:
    uid = await _user(db)
    ent = await access.grant(db, uid, PLAN, 1, days=30, now=T0)
    assert ent.expires_at == T0 + timedelta(days=30)
    # Renewing 10 days in extends from the current expiry, not from now.
    ent = await access.grant(db, uid, PLAN, 1, days=30, now=T0 + timedelta(days=10))
    assert ent.expires_at == T0 + timedelta(days=60)
    # After it lapsed, a renewal starts from now.
    late = T0 + timedelta(days=100)
    ent = await access.grant(db, uid, PLAN, 1, days=30, now=late)
    assert ent.expires_at == late + timedelta(days=30)
    assert await access.has_access(db, uid, PLAN, 1, now=late + timedelta(days=29))
    assert not await access.has_access(db, uid, PLAN, 1, now=late + timedelta(days=31))


async def test_lifetime_and_revoke(db: AsyncSession) -> None:
    uid = await _user(db)
    await access.grant(db, uid, PLAN, 2, days=None, now=T0)
    ent = await access.grant(db, uid, PLAN, 2, days=30, now=T0)
    assert ent.expires_at is None  # lifetime is never shortened by a period
    await access.revoke(db, uid, PLAN, 2, now=T0 + timedelta(days=1))
    assert not await access.has_access(db, uid, PLAN, 2, now=T0 + timedelta(days=2))
    ent = await access.grant(db, uid, PLAN, 2, days=7, now=T0 + timedelta(days=3))
    assert ent.revoked_at is None
    assert ent.expires_at == T0 + timedelta(days=10)


async def test_hooks_run_in_the_same_transaction(db: AsyncSession) -> None:
    uid = await _user(db)
    seen: list[tuple[str, int]] = []

    async def granted(session: AsyncSession, change: access.AccessChange) -> None:
        assert session is db
        seen.append(("grant", change.product_id))

    async def revoked(session: AsyncSession, change: access.AccessChange) -> None:
        seen.append(("revoke", change.product_id))

    access.on_grant("test-kind", granted)
    access.on_revoke("test-kind", revoked)
    await access.grant(db, uid, "test-kind", 5, days=1, now=T0)
    await access.revoke(db, uid, "test-kind", 5, now=T0)
    await access.revoke(db, uid, "test-kind", 5, now=T0)  # twice: the hook runs once
    assert seen == [("grant", 5), ("revoke", 5)]
