"""The ledger: every credit and refund split into platform fee, creator net and the
affiliate's commission (bot.growth.affiliates).

A sale books +gross = +fee + +net + +commission; its refund books the exact negation of
that sale, so a refunded sale nets to zero for every side whatever the fee was at the
time. The commission comes out of the creator's net, never more than all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import rollups
from bot.config import Settings
from bot.models import Creator, LedgerEntry, LedgerKind, Order, Payment, utcnow
from bot.ops import metrics
from bot.payments.pricing import percent_to_bps, split_fee


async def fee_bps_for(session: AsyncSession, creator_id: int, settings: Settings) -> int:
    override = await session.scalar(select(Creator.fee_bps).where(Creator.id == creator_id))
    if override is not None:
        return max(0, min(10_000, override))
    return percent_to_bps(settings.platform_fee_percent)


async def book_sale(
    session: AsyncSession,
    payment: Payment,
    creator_id: int,
    fee_bps: int,
    now: datetime | None = None,
    commission_minor: int = 0,
) -> LedgerEntry:
    fee, net = split_fee(payment.amount_minor, fee_bps)
    commission = max(0, min(commission_minor, net))
    net -= commission
    entry = LedgerEntry(
        payment_id=payment.id,
        creator_id=creator_id,
        kind=LedgerKind.SALE,
        currency=payment.currency,
        gross_minor=payment.amount_minor,
        fee_minor=fee,
        net_minor=net,
        commission_minor=commission,
        created_at=now or utcnow(),
    )
    session.add(entry)
    await session.flush()
    await _rollup(session, entry, payment)
    return entry


async def book_refund(
    session: AsyncSession,
    payment: Payment,
    creator_id: int,
    fee_bps: int,
    now: datetime | None = None,
) -> LedgerEntry:
    sale = await session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.payment_id == payment.id, LedgerEntry.kind == LedgerKind.SALE
        )
    )
    commission = 0
    if sale is not None:
        gross, fee, net = sale.gross_minor, sale.fee_minor, sale.net_minor
        commission = sale.commission_minor
    else:  # a payment booked before the ledger existed: split it the way it is split now
        gross = payment.amount_minor
        fee, net = split_fee(gross, fee_bps)
    entry = LedgerEntry(
        payment_id=payment.id,
        creator_id=creator_id,
        kind=LedgerKind.REFUND,
        currency=payment.currency,
        gross_minor=-gross,
        fee_minor=-fee,
        net_minor=-net,
        commission_minor=-commission,
        created_at=now or utcnow(),
    )
    session.add(entry)
    await session.flush()
    await _rollup(session, entry, payment)
    return entry


async def _rollup(session: AsyncSession, entry: LedgerEntry, payment: Payment) -> None:
    metrics.money_booked(session.sync_session, entry.kind, entry.currency, entry.gross_minor)
    order = await session.get(Order, payment.order_id)
    if order is not None:
        await rollups.ledger_booked(session, entry, order)


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    sales: int
    refunds: int
    gross_minor: int
    fee_minor: int
    net_minor: int
    commission_minor: int = 0


async def sales_summary(session: AsyncSession, creator_id: int | None) -> list[CurrencyTotals]:
    """Revenue per currency (refunds already subtracted); None = the whole platform."""
    sales = func.sum(case((LedgerEntry.kind == LedgerKind.SALE, 1), else_=0))
    query = select(
        LedgerEntry.currency,
        func.count(LedgerEntry.id),
        sales,
        func.sum(LedgerEntry.gross_minor),
        func.sum(LedgerEntry.fee_minor),
        func.sum(LedgerEntry.net_minor),
        func.sum(LedgerEntry.commission_minor),
    ).group_by(LedgerEntry.currency)
    if creator_id is not None:
        query = query.where(LedgerEntry.creator_id == creator_id)
    rows = (await session.execute(query.order_by(LedgerEntry.currency))).all()
    return [
        CurrencyTotals(
            currency=row[0],
            sales=int(row[2] or 0),
            refunds=int(row[1] or 0) - int(row[2] or 0),
            gross_minor=int(row[3] or 0),
            fee_minor=int(row[4] or 0),
            net_minor=int(row[5] or 0),
            commission_minor=int(row[6] or 0),
        )
        for row in rows
    ]
