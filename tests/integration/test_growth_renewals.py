"""Renewals earn commission: a Stars subscription charged again and a plan bought again
by card book the affiliate's share with the sale, under the same hold / cancel / clawback
rules; a redelivered renewal books one. gross = fee + net + commission for every order.
On SQLite and PostgreSQL (TEST_DATABASE_URL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiogram.exceptions import TelegramServerError
from aiogram.methods import SendMessage
from aiogram.types import Chat, Message, SuccessfulPayment, Update
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.config import Settings
from bot.growth import affiliates
from bot.growth.affiliates import ClickOutcome
from bot.models import AffiliateEntry, Job, JobStatus, LedgerEntry, Order, Payment, Plan
from bot.payments.checkout import Outcome
from bot.payments.refunds import RefundStatus, refund_payment
from bot.scheduler import notices
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
from tests.support.payments import (
    make_creator,
    stars_subscription_charge,
    tg,
)
from tests.support.updates import Harness

pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


async def club(db: AsyncSession, percent: int = 20, hold: int = 7) -> Plan:
    creator_id = await make_creator(db)
    plan = Plan(
        creator_id=creator_id,
        title="Club",
        stars_price=100,
        price_minor=1000,
        currency="USD",
        accepts_card=True,
        period_days=30,
        stars_subscription=True,
        published=True,
    )
    db.add(plan)
    await run_programme(db, creator_id, percent, hold)
    return plan


async def click(db: AsyncSession, affiliate: int, plan: Plan, user: int, at: datetime) -> None:
    code = await share(db, affiliate, "plan", plan.id)
    assert (await affiliates.click(db, code, user, at)).outcome == ClickOutcome.ATTRIBUTED
    await db.commit()


async def open_plan_order(
    db: AsyncSession, settings: Settings, plan: Plan, method: str, at: datetime
) -> Order:
    return await place_order(db, settings, ANN, "plan", plan.id, method, at)


async def stars_payment(
    db: AsyncSession, settings: Settings, order: Order, charge: str, at: datetime, first: bool
) -> Outcome:
    result = await stars_subscription_charge(
        db, settings, order.public_ref, ANN, charge, at, at + timedelta(days=30), first
    )
    await db.commit()
    return result.outcome


async def bobs_stars_member(db: AsyncSession, settings: Settings) -> tuple[Plan, Order, Outcome]:
    """Ann subscribes to the club by Stars at T0, through Bob's link: the first charge's
    outcome comes back with the plan and her order."""
    plan = await club(db)
    await click(db, BOB, plan, ANN, T0)
    order = await open_plan_order(db, settings, plan, "stars", T0)
    return plan, order, await stars_payment(db, settings, order, "s1", T0, first=True)


async def entries(db: AsyncSession) -> list[AffiliateEntry]:
    return list(await db.scalars(select(AffiliateEntry).order_by(AffiliateEntry.id)))


async def test_each_stars_renewal_earns_the_member_s_affiliate_once(
    db: AsyncSession, settings: Settings
) -> None:
    _plan, order, first = await bobs_stars_member(db, settings)
    assert first == Outcome.CREDITED
    # 45 days on: the click is long past its 30 days, the member is still Bob's.
    renewal = T0 + timedelta(days=45)
    assert await stars_payment(db, settings, order, "s2", renewal, first=False) == Outcome.CREDITED
    # Telegram redelivers the renewal: nothing new.
    assert await stars_payment(db, settings, order, "s2", renewal, first=False) == Outcome.DUPLICATE
    rows = await entries(db)
    assert [(e.affiliate_id, e.amount_minor, e.kind) for e in rows] == [
        (BOB, 20, "commission"),
        (BOB, 20, "commission"),
    ]
    assert rows[1].payable_at == renewal + timedelta(days=7)  # the programme's hold again
    sales = list(await db.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))
    assert [(s.gross_minor, s.fee_minor, s.commission_minor, s.net_minor) for s in sales] == [
        (100, 10, 20, 70),
        (100, 10, 20, 70),
    ]
    await assert_ledger_balanced(db)
    # The first is payable, the renewal's still held.
    assert await balance(db, BOB, renewal + timedelta(days=1)) == (20, 20, 0)

    # A refund of the renewal within its hold cancels just that commission.
    payment = await db.scalar(select(Payment).where(Payment.telegram_payment_charge_id == "s2"))
    assert payment is not None
    done = await refund_payment(
        db, payment, GATEWAYS, settings, actor_creator_id=None, now=renewal + timedelta(days=2)
    )
    assert done.status == RefundStatus.DONE
    await db.commit()
    await assert_ledger_balanced(db)
    assert await balance(db, BOB, renewal + timedelta(days=30)) == (0, 20, 0)


async def test_a_card_renewal_earns_for_the_first_affiliate_not_a_later_click(
    db: AsyncSession, settings: Settings
) -> None:
    plan = await club(db, percent=10, hold=0)
    await click(db, BOB, plan, ANN, T0)
    first = await open_plan_order(db, settings, plan, "card", T0)
    paid = await book_payment(
        db, settings, first, ANN, "card", "USD", 1000, "c1", T0, provider_charge_id="pc1"
    )
    assert paid.outcome == Outcome.CREDITED
    # 40 days later Cat's link is clicked (Bob's click ran out), then Ann renews by card.
    later = T0 + timedelta(days=40)
    await click(db, CAT, plan, ANN, later)
    second = await open_plan_order(db, settings, plan, "card", later)
    again = await book_payment(
        db, settings, second, ANN, "card", "USD", 1000, "c2", later, provider_charge_id="pc2"
    )
    assert again.outcome == Outcome.CREDITED
    rows = await entries(db)
    assert [(e.affiliate_id, e.amount_minor) for e in rows] == [(BOB, 100), (BOB, 100)]
    await assert_ledger_balanced(db)
    assert await balance(db, BOB, later) == (0, 200, 0)
    assert await balance(db, CAT, later) == (0, 0, 0)
    count = await db.scalar(select(func.count()).select_from(LedgerEntry))
    assert count == 2


async def test_a_renewal_after_the_programme_is_off_earns_nothing(
    db: AsyncSession, settings: Settings
) -> None:
    plan, order, _first = await bobs_stars_member(db, settings)
    spec = affiliates.parse_program(["off"])
    assert isinstance(spec, affiliates.ProgramSpec)
    await affiliates.set_program(db, plan.creator_id, spec)
    await db.commit()
    renewal = T0 + timedelta(days=30)
    assert await stars_payment(db, settings, order, "s2", renewal, first=False) == Outcome.CREDITED
    assert len(await entries(db)) == 1
    await assert_ledger_balanced(db)


def renewal_update(charge: str, ref: str, at: datetime, first: bool) -> Update:
    paid = SuccessfulPayment(
        currency="XTR",
        total_amount=100,
        invoice_payload=ref,
        telegram_payment_charge_id=charge,
        provider_payment_charge_id="",
        is_recurring=True,
        is_first_recurring=first or None,
        subscription_expiration_date=int((at + timedelta(days=30)).timestamp()),
    )
    message = Message(
        message_id=abs(hash(charge)) % 10**6,
        date=at,
        chat=Chat(id=ANN, type="private", first_name="Ann"),
        from_user=tg(ANN, "Ann"),
        successful_payment=paid,
    )
    return Update(update_id=abs(hash(charge)) % 10**6, message=message)


async def test_a_renewal_whose_receipt_fails_keeps_its_commission(
    app: App, db: AsyncSession, settings: Settings
) -> None:
    """Through the dispatcher: the renewal's receipt (sent after the commit) fails; the
    sale and its commission stay booked, once, and the receipt is the scheduler's."""
    h = Harness(app)
    plan = await club(db)
    now = datetime.now(UTC)
    await click(db, BOB, plan, ANN, now)
    order = await open_plan_order(db, settings, plan, "stars", now)
    ref = order.public_ref
    await db.close()
    await h.feed(renewal_update("sub-1", ref, now, first=True))
    h.session.add_result(
        TelegramServerError(SendMessage(chat_id=ANN, text="…"), "Internal Server Error")
    )
    await h.feed(renewal_update("sub-2", ref, now, first=False))
    await h.feed(renewal_update("sub-2", ref, now, first=False))  # redelivered
    db.expire_all()
    rows = await entries(db)
    assert [(e.affiliate_id, e.amount_minor) for e in rows] == [(BOB, 20), (BOB, 20)]
    await assert_ledger_balanced(db)
    assert await db.scalar(select(func.count()).select_from(LedgerEntry)) == 2
    pending = await db.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.kind == notices.KIND, Job.status == JobStatus.PENDING)
    )
    assert pending == 1  # the failed receipt, for the scheduler to send again


async def test_a_click_between_renewals_earns_nothing_on_an_automatic_renewal(
    db: AsyncSession, settings: Settings
) -> None:
    """Ann subscribed on her own; she clicks Cat's link later. Stars renewing her
    subscription was no one's doing: no commission."""
    plan = await club(db)
    order = await open_plan_order(db, settings, plan, "stars", T0)
    await stars_payment(db, settings, order, "s1", T0, first=True)
    await click(db, CAT, plan, ANN, T0 + timedelta(days=20))
    renewal = T0 + timedelta(days=30)
    assert await stars_payment(db, settings, order, "s2", renewal, first=False) == Outcome.CREDITED
    assert await entries(db) == []
    await assert_ledger_balanced(db)
