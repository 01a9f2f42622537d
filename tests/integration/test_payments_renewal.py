"""A Stars subscription plan: the first payment opens access, each renewal (same payload,
new charge) adds a period, and a redelivered renewal adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Entitlement, LedgerEntry, Payment, Plan
from bot.payments.checkout import Outcome
from bot.payments.orders import Offer, make_offer, open_order
from bot.services.users import TelegramProfile, upsert_user
from tests.support.payments import make_creator, pay_settings, stars_subscription_charge


async def test_stars_subscription_renewals_extend_access_once_each(
    db: AsyncSession, database_url: str
) -> None:
    settings = pay_settings(database_url)
    creator_id = await make_creator(db)
    plan = Plan(
        creator_id=creator_id,
        title="Club",
        stars_price=100,
        accepts_card=False,
        period_days=30,
        stars_subscription=True,
        published=True,
    )
    db.add(plan)
    await upsert_user(db, TelegramProfile(id=1001, first_name="Ann"))
    await db.flush()
    offer = await make_offer(db, 1001, "plan", plan.id, settings)
    assert isinstance(offer, Offer)
    order = await open_order(db, 1001, offer, "stars", settings)
    now = datetime.now(UTC)

    async def pay(charge: str, first: bool, at: datetime) -> Outcome:
        result = await stars_subscription_charge(
            db, settings, order.public_ref, 1001, charge, at, at, first
        )
        return result.outcome

    assert await pay("s1", True, now) == Outcome.CREDITED
    renewal_at = now + timedelta(days=29)
    assert await pay("s2", False, renewal_at) == Outcome.CREDITED
    assert await pay("s2", False, renewal_at) == Outcome.DUPLICATE
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.expires_at is not None
    assert abs(ent.expires_at - (now + timedelta(days=60))) < timedelta(seconds=1)
    assert await db.scalar(select(func.count()).select_from(Payment)) == 2
    assert await db.scalar(select(func.sum(LedgerEntry.gross_minor))) == 200
    renewal = await db.scalar(select(Payment).where(Payment.telegram_payment_charge_id == "s2"))
    assert renewal is not None and renewal.is_recurring
    assert renewal.subscription_expires_at is not None
