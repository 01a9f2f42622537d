"""Promoted listings: a creator's campaigns, their Stars, their clicks and their figures.

Money (the promotion ledger, ``promo_entries``, apart from the sales ledger so that no
sale figure ever counts a top-up; every entry keeps gross = fee + net + promo):

- a top-up is paid like a product (an order of kind ``promotion``, a Stars invoice) and
  booked in the payment's transaction: +gross, +promo on the campaign;
- a charged click moves its price from the promotion balance to the platform:
  +fee (promotion income, never mixed with the sale fee), -promo;
- a withdrawal moves unused budget to the creator's balance: +net, -promo.

The creator's balance is what the platform owes the creator: Σ net of the sales ledger
(sales after fee and commission, minus refunds) plus Σ net of the promotion ledger
(withdrawn budgets). The promotion balance is Σ promo: Stars held for campaigns.

A campaign runs while its unused budget covers one click at its max bid; then it ends
(what is left, less than one bid, can still be withdrawn).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    CampaignStatus,
    Course,
    Creator,
    LedgerEntry,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    ProductKind,
    PromoCampaign,
    PromoClick,
    PromoEntry,
    PromoEntryKind,
    PromoImpression,
    utcnow,
)
from bot.money import STARS

MIN_BID = 1  # Stars per click: also the price of a slot nobody bid against
MIN_BUDGET = 10
MAX_BUDGET = 10_000  # Telegram's ceiling for one Stars invoice
# A sponsored button is worth a charge for a day after it was shown.
IMPRESSION_TTL = timedelta(days=1)
# A purchase counts for a campaign when its learner's last charged click on it came
# at most this long before the payment.
ATTRIBUTION = timedelta(days=30)
TOKEN_BYTES = 9  # 12 url-safe characters, 72 random bits


class Problem(StrEnum):
    UNKNOWN_COURSE = "unknown_course"
    NOT_YOURS = "not_yours"
    UNPUBLISHED = "unpublished"
    BUDGET_LOW = "budget_low"
    BUDGET_HIGH = "budget_high"
    BID_LOW = "bid_low"
    BID_ABOVE_BUDGET = "bid_above_budget"
    UNKNOWN_CAMPAIGN = "unknown_campaign"
    NOT_RUNNING = "not_running"  # pause: not active; resume: not paused
    NO_BUDGET = "no_budget"  # resume with less than one bid left
    OVER_UNUSED = "over_unused"
    NOTHING_UNUSED = "nothing_unused"


def terms_problem(budget: int, bid: int) -> Problem | None:
    if budget < MIN_BUDGET:
        return Problem.BUDGET_LOW
    if budget > MAX_BUDGET:
        return Problem.BUDGET_HIGH
    if bid < MIN_BID:
        return Problem.BID_LOW
    if bid > budget:
        return Problem.BID_ABOVE_BUDGET
    return None


async def _own_published(
    session: AsyncSession, creator: Creator, course_id: int
) -> Course | Problem:
    course = await session.get(Course, course_id) if course_id > 0 else None
    if course is None:
        return Problem.UNKNOWN_COURSE
    if course.creator_id != creator.id:
        return Problem.NOT_YOURS
    if not course.published:
        return Problem.UNPUBLISHED
    return course


async def start(
    session: AsyncSession,
    creator: Creator,
    course_id: int,
    budget: int,
    bid: int,
    order_ttl: timedelta,
    now: datetime | None = None,
) -> tuple[PromoCampaign, Order] | Problem:
    """A pending campaign and the Stars order behind its top-up invoice. Nothing runs
    (or is shown) before the money is booked."""
    now = now or utcnow()
    course = await _own_published(session, creator, course_id)
    if isinstance(course, Problem):
        return course
    problem = terms_problem(budget, bid)
    if problem is not None:
        return problem
    campaign = PromoCampaign(
        creator_id=creator.id,
        course_id=course.id,
        bid_minor=bid,
        status=CampaignStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    await session.flush()
    order = Order(
        public_ref=secrets.token_urlsafe(18),
        user_id=creator.user_id,
        creator_id=creator.id,
        product_kind=ProductKind.PROMOTION,
        product_id=campaign.id,
        method=PaymentMethod.STARS,
        currency=STARS,
        list_amount_minor=budget,
        amount_minor=budget,
        status=OrderStatus.PENDING,
        expires_at=now + order_ttl,
        created_at=now,
    )
    session.add(order)
    await session.flush()
    return campaign, order


async def topup_problem(session: AsyncSession, order: Order) -> bool:
    """Whether a top-up invoice may still be paid: its campaign waits for it and the
    course is still the creator's and published (the pre-checkout's question)."""
    campaign = await session.get(PromoCampaign, order.product_id)
    if campaign is None or campaign.status != CampaignStatus.PENDING:
        return True
    course = await session.get(Course, campaign.course_id)
    return course is None or not course.published or course.creator_id != campaign.creator_id


async def credit_topup(
    session: AsyncSession, order: Order, payment: Payment, now: datetime
) -> PromoCampaign | None:
    """Book Stars paid for a campaign, in the payment's transaction. Whatever arrived is
    the creator's promotion balance: it is withdrawable even if the campaign never runs."""
    campaign = await session.get(PromoCampaign, order.product_id)
    if campaign is None:
        return None
    amount = payment.amount_minor
    await session.execute(
        update(PromoCampaign)
        .where(PromoCampaign.id == campaign.id)
        .values(budget_minor=PromoCampaign.budget_minor + amount, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add(
        PromoEntry(
            creator_id=campaign.creator_id,
            campaign_id=campaign.id,
            payment_id=payment.id,
            kind=PromoEntryKind.TOPUP,
            currency=payment.currency,
            gross_minor=amount,
            promo_minor=amount,
            created_at=now,
        )
    )
    await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status != OrderStatus.PAID)
        .values(status=OrderStatus.PAID, paid_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    await session.refresh(campaign)
    if campaign.status == CampaignStatus.PENDING:
        campaign.status = (
            CampaignStatus.ACTIVE if campaign.unused >= campaign.bid_minor else CampaignStatus.ENDED
        )
    payment.raw = {**payment.raw, "credited": True}
    await session.flush()
    return campaign


# --- impressions and clicks ------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def impression(
    session: AsyncSession,
    campaign_id: int,
    course_id: int,
    user_id: int,
    placement: str,
    price: int,
    now: datetime,
) -> str:
    """Record one sponsored slot shown; its token goes into the slot's button. Written
    with the update's commit: no round trip before the screen is sent."""
    token = new_token()
    session.add(
        PromoImpression(
            token=token,
            campaign_id=campaign_id,
            course_id=course_id,
            user_id=user_id,
            placement=placement,
            price_minor=price,
            created_at=now,
        )
    )
    return token


@dataclass(frozen=True, slots=True)
class Click:
    course_id: int
    charged: int  # Stars; 0: not charged (again today, ended, or paused)


async def click(session: AsyncSession, token: str, user_id: int, now: datetime) -> Click | None:
    """A sponsored card opened. None: no such impression of this learner (a forged or
    foreign button), and nothing changes. Charges the impression's second price once per
    campaign, learner and day, never more than the unused budget."""
    imp = (
        await session.scalar(select(PromoImpression).where(PromoImpression.token == token))
        if 0 < len(token) <= 16
        else None
    )
    if imp is None or imp.user_id != user_id:
        return None
    if now - imp.created_at > IMPRESSION_TTL:
        return Click(imp.course_id, 0)
    return Click(imp.course_id, await _charge(session, imp, now))


async def _charge(session: AsyncSession, imp: PromoImpression, now: datetime) -> int:
    campaign = await session.get(PromoCampaign, imp.campaign_id)
    if campaign is None or campaign.status != CampaignStatus.ACTIVE:
        return 0
    price = min(imp.price_minor, campaign.bid_minor)
    if price <= 0:
        return 0
    row = PromoClick(
        campaign_id=campaign.id,
        impression_id=imp.id,
        course_id=imp.course_id,
        user_id=imp.user_id,
        day=now.date(),
        price_minor=price,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
            took = await session.execute(
                update(PromoCampaign)
                .where(
                    PromoCampaign.id == campaign.id,
                    PromoCampaign.status == CampaignStatus.ACTIVE,
                    PromoCampaign.budget_minor
                    - PromoCampaign.spent_minor
                    - PromoCampaign.withdrawn_minor
                    >= price,
                )
                .values(spent_minor=PromoCampaign.spent_minor + price, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if not getattr(took, "rowcount", 0):
                raise _NoBudget
    except IntegrityError:
        return 0  # charged today already (the unique key), or concurrently
    except _NoBudget:
        return 0
    session.add(
        PromoEntry(
            creator_id=campaign.creator_id,
            campaign_id=campaign.id,
            click_id=row.id,
            kind=PromoEntryKind.SPEND,
            currency=STARS,
            fee_minor=price,
            promo_minor=-price,
            created_at=now,
        )
    )
    await session.refresh(campaign)
    if campaign.unused < campaign.bid_minor:
        campaign.status = CampaignStatus.ENDED  # the budget stops the campaign
    await session.flush()
    return price


class _NoBudget(Exception):
    pass


# --- the creator's controls ------------------------------------------------------------


async def _campaign(
    session: AsyncSession, creator_id: int, campaign_id: int
) -> PromoCampaign | None:
    campaign = await session.get(PromoCampaign, campaign_id) if campaign_id > 0 else None
    if campaign is None or campaign.creator_id != creator_id:
        return None  # someone else's reads as unknown: ids are not secrets, rights are
    return campaign


async def set_paused(
    session: AsyncSession, creator_id: int, campaign_id: int, paused: bool, now: datetime
) -> PromoCampaign | Problem:
    campaign = await _campaign(session, creator_id, campaign_id)
    if campaign is None:
        return Problem.UNKNOWN_CAMPAIGN
    want_from = CampaignStatus.ACTIVE if paused else CampaignStatus.PAUSED
    if campaign.status != want_from:
        return Problem.NOT_RUNNING
    if not paused and campaign.unused < campaign.bid_minor:
        return Problem.NO_BUDGET
    campaign.status = CampaignStatus.PAUSED if paused else CampaignStatus.ACTIVE
    campaign.updated_at = now
    await session.flush()
    return campaign


async def withdraw(
    session: AsyncSession,
    creator_id: int,
    campaign_id: int,
    amount: int | None,
    now: datetime,
) -> int | Problem:
    """Move unused budget (all of it when amount is None) to the creator's balance."""
    campaign = await _campaign(session, creator_id, campaign_id)
    if campaign is None:
        return Problem.UNKNOWN_CAMPAIGN
    unused = campaign.unused
    if amount is None:
        amount = unused
    if amount <= 0 and unused <= 0:
        return Problem.NOTHING_UNUSED
    if amount <= 0 or amount > unused:
        return Problem.OVER_UNUSED
    took = await session.execute(
        update(PromoCampaign)
        .where(
            PromoCampaign.id == campaign.id,
            PromoCampaign.budget_minor - PromoCampaign.spent_minor - PromoCampaign.withdrawn_minor
            >= amount,
        )
        .values(withdrawn_minor=PromoCampaign.withdrawn_minor + amount, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(took, "rowcount", 0):
        return Problem.OVER_UNUSED  # a click spent it meanwhile
    session.add(
        PromoEntry(
            creator_id=creator_id,
            campaign_id=campaign.id,
            kind=PromoEntryKind.WITHDRAW,
            currency=STARS,
            net_minor=amount,
            promo_minor=-amount,
            created_at=now,
        )
    )
    await session.refresh(campaign)
    if campaign.status == CampaignStatus.ACTIVE and campaign.unused < campaign.bid_minor:
        campaign.status = CampaignStatus.ENDED
    await session.flush()
    return amount


# --- figures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignFigures:
    id: int
    course_id: int
    title: str
    status: str
    bid: int
    budget: int
    spent: int
    unused: int
    impressions: int
    clicks: int
    purchases: int

    @property
    def cost_per_purchase(self) -> float | None:
        return self.spent / self.purchases if self.purchases else None


async def campaign_figures(session: AsyncSession, creator_id: int) -> list[CampaignFigures]:
    """Every paid-for campaign of a creator, newest first (unpaid invoices left out)."""
    rows = (
        await session.execute(
            select(PromoCampaign, Course.title)
            .join(Course, Course.id == PromoCampaign.course_id)
            .where(
                PromoCampaign.creator_id == creator_id,
                PromoCampaign.status != CampaignStatus.PENDING,
            )
            .order_by(PromoCampaign.id.desc())
        )
    ).all()
    ids = [c.id for c, _t in rows]
    if not ids:
        return []
    shown = await _counts(session, PromoImpression.campaign_id, ids)
    clicks = await _counts(session, PromoClick.campaign_id, ids)
    bought = await purchases(session, ids)
    return [
        CampaignFigures(
            id=c.id,
            course_id=c.course_id,
            title=title,
            status=c.status,
            bid=c.bid_minor,
            budget=c.budget_minor,
            spent=c.spent_minor,
            unused=c.unused,
            impressions=int(shown.get(c.id, 0)),
            clicks=int(clicks.get(c.id, 0)),
            purchases=bought.get(c.id, 0),
        )
        for c, title in rows
    ]


async def _counts(session: AsyncSession, column: Any, ids: list[int]) -> dict[int, int]:
    rows = await session.execute(
        select(column, func.count()).where(column.in_(ids)).group_by(column)
    )
    return {int(key): int(n) for key, n in rows}


async def purchases(session: AsyncSession, campaign_ids: list[int]) -> dict[int, int]:
    """Paid (not refunded) course orders per campaign: each goes to the campaign of the
    buyer's last charged click on that course, at most ATTRIBUTION before the payment."""
    clicks = (
        await session.execute(
            select(
                PromoClick.campaign_id,
                PromoClick.user_id,
                PromoClick.course_id,
                PromoClick.created_at,
            ).where(PromoClick.campaign_id.in_(campaign_ids))
        )
    ).all()
    by_pair: dict[tuple[int, int], list[tuple[datetime, int]]] = defaultdict(list)
    for campaign_id, user_id, course_id, at in clicks:
        by_pair[(user_id, course_id)].append((at, campaign_id))
    if not by_pair:
        return {}
    orders = (
        await session.execute(
            select(Order.user_id, Order.product_id, Order.paid_at).where(
                Order.status == OrderStatus.PAID,
                Order.product_kind == ProductKind.COURSE,
                Order.gift.is_(False),
                Order.user_id.in_(sorted({u for u, _c in by_pair})),
                Order.product_id.in_(sorted({c for _u, c in by_pair})),
            )
        )
    ).all()
    out: dict[int, int] = defaultdict(int)
    for user_id, course_id, paid_at in orders:
        before = [
            (at, cid)
            for at, cid in by_pair.get((user_id, course_id), ())
            if paid_at is not None and paid_at - ATTRIBUTION <= at <= paid_at
        ]
        if before:
            out[max(before)[1]] += 1
    return dict(out)


@dataclass(frozen=True, slots=True)
class Balances:
    promotion: int  # Stars held for campaigns (Σ promo)
    creator: int  # what the platform owes the creator, in Stars (Σ net of both ledgers)


async def balances(session: AsyncSession, creator_id: int) -> Balances:
    promo = await session.scalar(
        select(func.coalesce(func.sum(PromoEntry.promo_minor), 0)).where(
            PromoEntry.creator_id == creator_id
        )
    )
    promo_net = await session.scalar(
        select(func.coalesce(func.sum(PromoEntry.net_minor), 0)).where(
            PromoEntry.creator_id == creator_id
        )
    )
    sales_net = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.net_minor), 0)).where(
            LedgerEntry.creator_id == creator_id, LedgerEntry.currency == STARS
        )
    )
    return Balances(int(promo or 0), int(sales_net or 0) + int(promo_net or 0))


async def promotion_income(
    session: AsyncSession, start: datetime | None, end: datetime | None
) -> int:
    """The platform's promotion income in Stars (charged clicks) in [start, end)."""
    query = select(func.coalesce(func.sum(PromoEntry.fee_minor), 0)).where(
        PromoEntry.kind == PromoEntryKind.SPEND
    )
    if start is not None:
        query = query.where(PromoEntry.created_at >= start)
    if end is not None:
        query = query.where(PromoEntry.created_at < end)
    return int(await session.scalar(query) or 0)
