"""Growth money: affiliate commissions booked with the sale, cancelled or clawed back by
a refund, paid out never above the payable balance; gifts claimed once. On SQLite and
PostgreSQL (TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.config import Settings
from bot.db import create_sessionmaker
from bot.growth import affiliates, gifts
from bot.growth.affiliates import ClickOutcome, LinkProblem, PayoutProblem, ProgramProblem
from bot.growth.gifts import ClaimOutcome
from bot.models import (
    AffiliateEntry,
    Entitlement,
    Gift,
    GiftStatus,
    LedgerEntry,
    Order,
    Payment,
)
from bot.payments.checkout import Outcome
from bot.payments.ledger import sales_summary
from bot.payments.refunds import RefundStatus, refund_payment
from bot.services import access
from bot.services.users import TelegramProfile, upsert_user
from tests.support.growth import (
    ANN,
    BOB,
    CAT,
    GATEWAYS,
    T0,
    assert_ledger_balanced,
    balance,
    book_payment,
    place_order,
    run_programme,
    share,
)
from tests.support.payments import CREATOR_USER, make_course

pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


async def world(db: AsyncSession, percent: int = 20, hold: int = 30) -> tuple[int, int]:
    creator_id, course_id = await make_course(db, stars=500)
    await run_programme(db, creator_id, percent, hold)
    return creator_id, course_id


async def pay(
    db: AsyncSession,
    settings: Settings,
    user_id: int,
    course_id: int,
    charge: str,
    now: datetime,
    gift: bool = False,
) -> Order:
    order = await place_order(db, settings, user_id, "course", course_id, "stars", now, gift=gift)
    result = await book_payment(db, settings, order, user_id, "stars", "XTR", 500, charge, now)
    assert result.outcome == Outcome.CREDITED, result
    await db.refresh(order)
    return order


async def test_a_referred_sale_books_its_commission_once_with_the_sale(
    db: AsyncSession, settings: Settings
) -> None:
    creator_id, course_id = await world(db)
    code = await share(db, BOB, "course", course_id)
    assert (await affiliates.click(db, code, ANN, T0)).outcome == ClickOutcome.ATTRIBUTED
    await db.commit()
    order = await pay(db, settings, ANN, course_id, "ch-1", T0 + timedelta(days=1))

    [sale] = list(await db.scalars(select(LedgerEntry)))
    # 500 Stars, 10 % fee = 50, 20 % commission = 100, the creator keeps 350.
    assert (sale.gross_minor, sale.fee_minor, sale.commission_minor, sale.net_minor) == (
        500,
        50,
        100,
        350,
    )
    await assert_ledger_balanced(db)
    source = await db.scalar(select(Order.source).where(Order.public_ref == order.public_ref))
    assert source == "aff"
    assert await balance(db, BOB, T0 + timedelta(days=2)) == (100, 0, 0)
    assert await balance(db, BOB, T0 + timedelta(days=32)) == (0, 100, 0)
    [totals] = await sales_summary(db, creator_id)
    assert (totals.gross_minor, totals.net_minor, totals.commission_minor) == (500, 350, 100)

    # Telegram delivers the same payment again: nothing new is booked.
    again = await book_payment(
        db, settings, order, ANN, "stars", "XTR", 500, "ch-1", T0 + timedelta(days=1)
    )
    assert again.outcome == Outcome.DUPLICATE
    assert await db.scalar(select(func.count()).select_from(AffiliateEntry)) == 1
    assert await db.scalar(select(func.count()).select_from(LedgerEntry)) == 1

    report = await affiliates.report(db, creator_id, T0 + timedelta(days=2))
    [row] = report
    assert (row.affiliate_id, row.clicks, row.starts, row.buyers) == (BOB, 1, 1, 1)
    assert row.money[0].revenue == 500 and row.money[0].pending == 100


async def test_a_refund_within_the_hold_leaves_every_balance_as_if_unsold(
    db: AsyncSession, settings: Settings
) -> None:
    creator_id, course_id = await world(db)
    await affiliates.click(db, await share(db, BOB, "course", course_id), ANN, T0)
    await db.commit()
    await pay(db, settings, ANN, course_id, "ch-1", T0)
    payment = await db.scalar(select(Payment))
    assert payment is not None
    refund = await refund_payment(
        db, payment, GATEWAYS, settings, actor_creator_id=None, now=T0 + timedelta(days=5)
    )
    assert refund.status == RefundStatus.DONE
    await db.commit()
    await assert_ledger_balanced(db)
    [totals] = await sales_summary(db, creator_id)
    assert (totals.gross_minor, totals.fee_minor, totals.net_minor, totals.commission_minor) == (
        0,
        0,
        0,
        0,
    )
    for at in (T0 + timedelta(days=6), T0 + timedelta(days=60)):
        assert await balance(db, BOB, at) == (0, 0, 0)


async def test_a_refund_after_the_hold_claws_back_below_zero(
    db: AsyncSession, settings: Settings
) -> None:
    creator_id, course_id = await world(db, hold=7)
    await affiliates.click(db, await share(db, BOB, "course", course_id), ANN, T0)
    await db.commit()
    await pay(db, settings, ANN, course_id, "ch-1", T0)
    later = T0 + timedelta(days=8)
    # Above the payable balance: refused, nothing recorded.
    assert (
        await affiliates.record_payout(db, creator_id, BOB, "XTR", 101, later)
        == PayoutProblem.ABOVE_BALANCE
    )
    paid = await affiliates.record_payout(db, creator_id, BOB, "XTR", 100, later)
    assert not isinstance(paid, PayoutProblem) and paid.payable_after == 0
    await db.commit()
    assert await balance(db, BOB, later) == (0, 0, 100)

    payment = await db.scalar(select(Payment))
    assert payment is not None
    await refund_payment(db, payment, GATEWAYS, settings, actor_creator_id=None, now=later)
    await db.commit()
    await assert_ledger_balanced(db)
    # The clawback is booked: the affiliate owes it back, netted on the next payout.
    assert await balance(db, BOB, later) == (0, -100, 100)
    assert (
        await affiliates.record_payout(db, creator_id, BOB, "XTR", 1, later)
        == PayoutProblem.ABOVE_BALANCE
    )
    [totals] = await sales_summary(db, creator_id)
    assert (totals.gross_minor, totals.net_minor, totals.commission_minor) == (0, 0, 0)


async def test_first_click_wins_and_nobody_earns_on_themselves(
    db: AsyncSession, settings: Settings
) -> None:
    _creator_id, course_id = await world(db)
    bob, cat = await share(db, BOB, "course", course_id), await share(db, CAT, "course", course_id)
    assert (await affiliates.click(db, bob, ANN, T0)).outcome == ClickOutcome.ATTRIBUTED
    assert (await affiliates.click(db, cat, ANN, T0)).outcome == ClickOutcome.KEPT
    # Cat's own link, clicked by Cat: counted, never attributed.
    assert (await affiliates.click(db, cat, CAT, T0)).outcome == ClickOutcome.OWN
    assert (await affiliates.click(db, "forged", ANN, T0)).outcome == ClickOutcome.FORGED
    # The creator cannot be their own affiliate.
    assert await affiliates.link_for(db, CREATOR_USER, "course", course_id) == (
        LinkProblem.OWN_PRODUCT
    )
    await db.commit()
    await pay(db, settings, ANN, course_id, "ch-1", T0 + timedelta(days=1))
    await pay(db, settings, CAT, course_id, "ch-2", T0 + timedelta(days=1))
    entries = list(await db.scalars(select(AffiliateEntry)))
    assert [(e.affiliate_id, e.buyer_id) for e in entries] == [(BOB, ANN)]
    await assert_ledger_balanced(db)


async def test_a_click_older_than_30_days_gives_way(db: AsyncSession, settings: Settings) -> None:
    _creator_id, course_id = await world(db)
    bob, cat = await share(db, BOB, "course", course_id), await share(db, CAT, "course", course_id)
    await affiliates.click(db, bob, ANN, T0)
    later = T0 + timedelta(days=31)
    assert (await affiliates.click(db, cat, ANN, later)).outcome == ClickOutcome.ATTRIBUTED
    await db.commit()
    await pay(db, settings, ANN, course_id, "ch-1", later)
    [entry] = list(await db.scalars(select(AffiliateEntry)))
    assert entry.affiliate_id == CAT


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["0"], ProgramProblem.PERCENT),
        (["91"], ProgramProblem.PERCENT),
        (["-5"], ProgramProblem.PERCENT),
        (["20", "hold=-1"], ProgramProblem.HOLD),
        (["20", "hold=²"], ProgramProblem.HOLD),
        (["20", "min=abc"], ProgramProblem.MIN),
        (["99999999999999999999"], ProgramProblem.PERCENT),
        (["x"], ProgramProblem.USAGE),
        ([], ProgramProblem.USAGE),
    ],
)
def test_bad_programmes_are_refused(args: list[str], problem: ProgramProblem) -> None:
    assert affiliates.parse_program(args) == problem


async def test_a_gift_is_claimed_once_never_by_its_buyer_nor_an_owner(
    db: AsyncSession, engine: AsyncEngine, settings: Settings
) -> None:
    creator_id, course_id = await world(db)
    # Cat owns the course and may still buy it as a gift.
    await pay(db, settings, CAT, course_id, "ch-0", T0)
    order = await pay(db, settings, CAT, course_id, "ch-1", T0, gift=True)
    gift = await gifts.gift_of_order(db, order.id)
    assert gift is not None and gift.status == GiftStatus.OPEN
    [totals] = await sales_summary(db, creator_id)
    assert totals.sales == 2 and totals.gross_minor == 1000  # gift revenue is revenue
    source = await db.scalar(select(Order.source).where(Order.id == order.id))
    assert source == "gift"

    assert (await gifts.claim(db, "x" * 24, ANN, T0)).outcome == ClaimOutcome.FORGED
    assert (await gifts.claim(db, gift.token, CAT, T0)).outcome == ClaimOutcome.OWN
    # Nor by the course's own creator.
    assert (await gifts.claim(db, gift.token, CREATOR_USER, T0)).outcome == ClaimOutcome.OWNED
    # Ann owns it already (a grant): told, and the gift stays open for someone else.
    await access.grant(db, ANN, "course", course_id, days=None, now=T0)
    await db.commit()
    assert (await gifts.claim(db, gift.token, ANN, T0)).outcome == ClaimOutcome.OWNED
    await db.commit()
    status = await db.scalar(select(Gift.status).where(Gift.id == gift.id))
    assert status == GiftStatus.OPEN

    # Two learners claim at the same moment: one wins.
    for uid in (2001, 2002):
        await upsert_user(db, TelegramProfile(id=uid, first_name="X"))
    await db.commit()
    maker = create_sessionmaker(engine)

    async def claim_as(uid: int) -> ClaimOutcome:
        async with maker() as s:
            result = await gifts.claim(s, gift.token, uid, T0)
            await s.commit()
            return result.outcome

    outcomes = await asyncio.gather(claim_as(2001), claim_as(2002))
    assert sorted(outcomes) == [ClaimOutcome.CLAIMED, ClaimOutcome.TAKEN]
    owners = await db.scalar(
        select(func.count())
        .select_from(Entitlement)
        .where(Entitlement.source_order_id == order.id, Entitlement.revoked_at.is_(None))
    )
    assert owners == 1
    assert (await gifts.claim(db, gift.token, BOB, T0)).outcome == ClaimOutcome.TAKEN


async def test_a_refunded_unclaimed_gift_voids_its_link(
    db: AsyncSession, settings: Settings
) -> None:
    creator_id, course_id = await world(db)
    order = await pay(db, settings, CAT, course_id, "ch-1", T0, gift=True)
    payment = await db.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment is not None
    await refund_payment(db, payment, GATEWAYS, settings, actor_creator_id=None, now=T0)
    await db.commit()
    gift = await gifts.gift_of_order(db, order.id)
    assert gift is not None and gift.status == GiftStatus.VOID
    assert (await gifts.claim(db, gift.token, ANN, T0)).outcome == ClaimOutcome.VOID
    assert not await access.has_access(db, ANN, "course", course_id, T0)
    [totals] = await sales_summary(db, creator_id)
    assert totals.gross_minor == 0 and totals.net_minor == 0
