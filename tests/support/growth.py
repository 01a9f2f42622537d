"""Builders for the growth-money tests (affiliates, renewals, gifts): three learners and a
creator's affiliate programme, orders opened and paid the way checkout books them, and the
ledger checks every such test ends with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.growth import affiliates
from bot.growth.affiliates import LinkProblem, ProgramProblem
from bot.models import AffiliateEntry, LedgerEntry, Order
from bot.payments.checkout import PaymentResult, record_payment
from bot.payments.gateways import Gateways, StarTxn
from bot.payments.orders import Offer, make_offer, open_order
from bot.services.users import TelegramProfile, upsert_user

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANN, BOB, CAT = 1001, 1002, 1003


class FakeStars:
    async def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        return None

    async def star_transactions(self, offset: int, limit: int) -> list[StarTxn]:
        return []


GATEWAYS = Gateways(stars=FakeStars(), card=None)


async def run_programme(db: AsyncSession, creator_id: int, percent: int, hold: int) -> None:
    """Ann, Bob and Cat exist, and the creator pays affiliates percent % after hold days;
    committed so the bot's own session sees them."""
    for uid, name in ((ANN, "Ann"), (BOB, "Bob"), (CAT, "Cat")):
        await upsert_user(db, TelegramProfile(id=uid, first_name=name))
    spec = affiliates.parse_program([str(percent), f"hold={hold}"])
    assert isinstance(spec, affiliates.ProgramSpec)
    assert not isinstance(await affiliates.set_program(db, creator_id, spec), ProgramProblem)
    await db.commit()


async def share(db: AsyncSession, affiliate: int, kind: str, product_id: int) -> str:
    """The affiliate's link code for a product (committed)."""
    link = await affiliates.link_for(db, affiliate, kind, product_id)
    assert not isinstance(link, LinkProblem)
    await db.commit()
    return link.code


async def place_order(
    db: AsyncSession,
    settings: Settings,
    user_id: int,
    kind: str,
    product_id: int,
    method: str,
    at: datetime,
    gift: bool = False,
) -> Order:
    """The pending order the buyer's Pay button opens (committed)."""
    offer = await make_offer(db, user_id, kind, product_id, settings, now=at, gift=gift)
    assert isinstance(offer, Offer)
    order = await open_order(db, user_id, offer, method, settings, at, gift=gift)
    await db.commit()
    return order


async def book_payment(
    db: AsyncSession,
    settings: Settings,
    order: Order,
    payer_id: int,
    method: str,
    currency: str,
    amount: int,
    charge: str,
    at: datetime,
    **extra: Any,
) -> PaymentResult:
    """The payment Telegram reports for order, booked and committed; extra goes to
    record_payment as it is (provider_charge_id, raw)."""
    result = await record_payment(
        db,
        payload=order.public_ref,
        payer_id=payer_id,
        method=method,
        currency=currency,
        amount=amount,
        settings=settings,
        telegram_charge_id=charge,
        now=at,
        **extra,
    )
    await db.commit()
    return result


async def assert_ledger_balanced(db: AsyncSession) -> None:
    """gross = platform fee + creator net + commission, for every ledger row."""
    for e in await db.scalars(select(LedgerEntry)):
        assert e.gross_minor == e.fee_minor + e.net_minor + e.commission_minor, e.id
    # ... and the affiliates' ledger agrees with the commission the sales carry.
    booked = await db.scalar(select(func.coalesce(func.sum(LedgerEntry.commission_minor), 0)))
    owed = await db.scalar(
        select(func.coalesce(func.sum(AffiliateEntry.amount_minor), 0)).where(
            AffiliateEntry.kind != "payout"
        )
    )
    assert booked == owed


async def balance(db: AsyncSession, affiliate: int, now: datetime) -> tuple[int, int, int]:
    """(pending, payable, paid) of the affiliate, summed over currencies."""
    rows = await affiliates.balances(db, now, affiliate_id=affiliate)
    return (
        sum(b.pending for b in rows),
        sum(b.payable for b in rows),
        sum(b.paid for b in rows),
    )
