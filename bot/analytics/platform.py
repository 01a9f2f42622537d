"""The platform owners' report: money per currency, who was active, top products and how
people paid, for one period. Straight from the ledger, payments and events."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.exports import product_title, with_products
from bot.analytics.periods import Period, within
from bot.models import (
    Bundle,
    Course,
    Event,
    LedgerEntry,
    LedgerKind,
    Order,
    Payment,
    Plan,
    PromoEntry,
    PromoEntryKind,
)

TOP_N = 5


@dataclass(frozen=True, slots=True)
class CurrencyFigures:
    currency: str
    sales: int  # payments booked in the period
    refunds: int  # refunds booked in the period (of any sale)
    gmv_minor: int  # gross of the period's sales
    refunded_minor: int  # gross given back in the period, positive
    fee_minor: int  # the platform's fee income, refunds taken off

    @property
    def net_gmv_minor(self) -> int:
        return self.gmv_minor - self.refunded_minor


@dataclass(frozen=True, slots=True)
class TopProduct:
    product_kind: str
    product_id: int
    title: str
    gross_minor: int  # sales less refunds in the period


@dataclass(frozen=True, slots=True)
class MethodFigures:
    method: str
    currency: str
    payments: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class PlatformReport:
    currencies: list[CurrencyFigures]
    creators_with_sales: int
    active_learners: int
    buyers: int
    top: dict[str, list[TopProduct]] = field(default_factory=dict)
    methods: list[MethodFigures] = field(default_factory=list)
    # Promoted listings, in Stars (bot.marketplace.promotions): the promotion ledger's
    # charged clicks (platform income, apart from the sale fee), top-ups and withdrawals.
    promotion_income: int = 0
    promotion_clicks: int = 0
    promotion_topups: int = 0
    promotion_withdrawn: int = 0

    @property
    def empty(self) -> bool:
        return not self.currencies and not self.active_learners


async def platform_report(session: AsyncSession, period: Period) -> PlatformReport:
    in_period = within(LedgerEntry.created_at, period)
    is_sale = LedgerEntry.kind == LedgerKind.SALE
    money = await session.execute(
        select(
            LedgerEntry.currency,
            func.sum(case((is_sale, 1), else_=0)),
            func.sum(case((is_sale, 0), else_=1)),
            func.sum(case((is_sale, LedgerEntry.gross_minor), else_=0)),
            func.sum(case((is_sale, 0), else_=-LedgerEntry.gross_minor)),
            func.sum(LedgerEntry.fee_minor),
        )
        .where(in_period)
        .group_by(LedgerEntry.currency)
        .order_by(LedgerEntry.currency)
    )
    currencies = [
        CurrencyFigures(cur, int(s or 0), int(r or 0), int(g or 0), int(rf or 0), int(f or 0))
        for cur, s, r, g, rf, f in money
    ]
    creators = await session.scalar(
        select(func.count(func.distinct(LedgerEntry.creator_id))).where(in_period, is_sale)
    )
    buyers = await session.scalar(
        select(func.count(func.distinct(Payment.user_id)))
        .join(LedgerEntry, LedgerEntry.payment_id == Payment.id)
        .where(in_period, is_sale)
    )
    # Active: did anything the funnel records (a start, a view, a search, a lesson done,
    # an invoice) or paid, in the period.
    people = union(
        select(Event.user_id).where(Event.user_id.is_not(None), within(Event.created_at, period)),
        select(Payment.user_id).where(within(Payment.created_at, period)),
    ).subquery()
    active = await session.scalar(select(func.count()).select_from(people))

    gross = func.sum(LedgerEntry.gross_minor)
    products = await session.execute(
        with_products(
            select(
                LedgerEntry.currency, Order.product_kind, Order.product_id, product_title(), gross
            )
            .select_from(LedgerEntry)
            .join(Payment, Payment.id == LedgerEntry.payment_id)
            .join(Order, Order.id == Payment.order_id)
        )
        .where(in_period)
        .group_by(
            LedgerEntry.currency,
            Order.product_kind,
            Order.product_id,
            Course.title,
            Plan.title,
            Bundle.title,
        )
    )
    top: dict[str, list[TopProduct]] = {}
    for cur, kind, pid, title, amount in products:
        top.setdefault(cur, []).append(TopProduct(kind, int(pid), title, int(amount or 0)))
    for cur, items in top.items():
        items.sort(key=lambda p: (-p.gross_minor, p.product_kind, p.product_id))
        top[cur] = [p for p in items if p.gross_minor > 0][:TOP_N]

    methods = await session.execute(
        select(Payment.method, LedgerEntry.currency, func.count(LedgerEntry.id), gross)
        .join(Payment, Payment.id == LedgerEntry.payment_id)
        .where(in_period, is_sale)
        .group_by(Payment.method, LedgerEntry.currency)
        .order_by(LedgerEntry.currency, Payment.method)
    )
    promo = {
        kind: (int(n or 0), int(g or 0), int(f or 0), int(net or 0))
        for kind, n, g, f, net in await session.execute(
            select(
                PromoEntry.kind,
                func.count(PromoEntry.id),
                func.sum(PromoEntry.gross_minor),
                func.sum(PromoEntry.fee_minor),
                func.sum(PromoEntry.net_minor),
            )
            .where(within(PromoEntry.created_at, period))
            .group_by(PromoEntry.kind)
        )
    }
    none = (0, 0, 0, 0)
    return PlatformReport(
        promotion_income=promo.get(PromoEntryKind.SPEND, none)[2],
        promotion_clicks=promo.get(PromoEntryKind.SPEND, none)[0],
        promotion_topups=promo.get(PromoEntryKind.TOPUP, none)[1],
        promotion_withdrawn=promo.get(PromoEntryKind.WITHDRAW, none)[3],
        currencies=currencies,
        creators_with_sales=int(creators or 0),
        active_learners=int(active or 0),
        buyers=int(buyers or 0),
        top={cur: items for cur, items in sorted(top.items()) if items},
        methods=[MethodFigures(m, c, int(n), int(g or 0)) for m, c, n, g in methods],
    )
