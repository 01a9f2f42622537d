"""Affiliates: creators' programmes, learners' personal links, first-click attribution
and the commissions' own ledger.

A commission is decided and booked in the transaction that books the sale
(bot.payments.checkout): the sale's ledger row carries it (gross = fee + net +
commission) and an AffiliateEntry says whose it is and from when it is payable. Nothing
flips it from pending to payable: the balance is computed from `payable_at`. A refund
within the hold books a CANCEL with the same payable_at (the two net to nothing, then
and later); after the hold, a CLAWBACK payable at once, which may take the balance
below zero until the next sales or payout net it.
"""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.growth import payable
from bot.models import (
    AffiliateAttribution,
    AffiliateEntry,
    AffiliateEntryKind,
    AffiliateLink,
    AffiliateProgram,
    Creator,
    Order,
    Payment,
    ProductKind,
    User,
)
from bot.payments.products import load_product

MIN_PERCENT, MAX_PERCENT = 1, 90
ATTRIBUTION_DAYS = 30
CODE_BYTES = 9  # 12 url-safe characters, 72 random bits: not guessable, short in a link
MAX_CODE = 24


class ProgramProblem(StrEnum):
    USAGE = "usage"
    PERCENT = "percent"
    HOLD = "hold"
    MIN = "min"
    PRODUCT = "product"  # not one of the creator's products


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    percent: int | None  # None: switch off
    hold_days: int = 0
    min_minor: int = 0
    min_currency: str | None = None
    product_kind: str | None = None
    product_id: int | None = None


def parse_program(args: list[str]) -> ProgramSpec | ProgramProblem:
    """`<percent>|off [hold=<days>] [min=<amount>] [course=<id>|plan=<id>]`."""
    from bot.payments.coupons import CouponSpecError, parse_value

    if not args:
        return ProgramProblem.USAGE
    head, rest = args[0].strip().lower(), args[1:]
    percent: int | None = None
    if head != "off":
        number = head.removesuffix("%")
        if not re.fullmatch(r"-?[0-9]+", number):
            return ProgramProblem.USAGE
        value = parsing.whole(number, MIN_PERCENT, MAX_PERCENT)
        if value is None:
            return ProgramProblem.PERCENT
        percent = value
    hold, min_minor, min_currency = 0, 0, None
    kind: str | None = None
    product_id: int | None = None
    for word in rest:
        key, sep, value_text = word.partition("=")
        key = key.lower()
        if not sep:
            return ProgramProblem.USAGE
        if key == "hold":
            days = parsing.whole(value_text, 0, parsing.MAX_DAYS)
            if days is None:
                return ProgramProblem.HOLD
            hold = days
        elif key == "min":
            try:
                kind_, amount, currency = parse_value(value_text)
            except CouponSpecError:
                return ProgramProblem.MIN
            if currency is None or kind_ != "fixed":
                return ProgramProblem.MIN
            min_minor, min_currency = amount, currency
        elif key in (ProductKind.COURSE, ProductKind.PLAN):
            ident = parsing.record_id(value_text)
            if ident is None:
                return ProgramProblem.PRODUCT
            kind, product_id = key, ident
        else:
            return ProgramProblem.USAGE
    return ProgramSpec(percent, hold, min_minor, min_currency, kind, product_id)


async def set_program(
    session: AsyncSession, creator_id: int, spec: ProgramSpec
) -> AffiliateProgram | ProgramProblem:
    if spec.product_kind is not None and spec.product_id is not None:
        product = await load_product(session, spec.product_kind, spec.product_id)
        if product is None or product.creator_id != creator_id:
            return ProgramProblem.PRODUCT
    program = await session.scalar(
        select(AffiliateProgram).where(
            AffiliateProgram.creator_id == creator_id,
            _same_product(spec.product_kind, spec.product_id),
        )
    )
    if program is None:
        program = AffiliateProgram(
            creator_id=creator_id,
            product_kind=spec.product_kind,
            product_id=spec.product_id,
            percent=spec.percent or 0,
        )
        session.add(program)
    program.active = spec.percent is not None
    if spec.percent is not None:
        program.percent = spec.percent
        program.hold_days = spec.hold_days
        program.min_payout_minor = spec.min_minor
        program.min_currency = spec.min_currency
    await session.flush()
    return program


def _same_product(kind: str | None, product_id: int | None):  # type: ignore[no-untyped-def]
    if kind is None:
        return AffiliateProgram.product_kind.is_(None)
    return (AffiliateProgram.product_kind == kind) & (AffiliateProgram.product_id == product_id)


async def program_for(
    session: AsyncSession, creator_id: int, kind: str, product_id: int
) -> AffiliateProgram | None:
    """The product's own row if there is one (on or off), else the creator-wide one."""
    rows = list(
        await session.scalars(
            select(AffiliateProgram).where(
                AffiliateProgram.creator_id == creator_id,
                _same_product(kind, product_id) | AffiliateProgram.product_kind.is_(None),
            )
        )
    )
    own = [p for p in rows if p.product_kind is not None]
    chosen = own[0] if own else (rows[0] if rows else None)
    return chosen if chosen is not None and chosen.active else None


# --- links and clicks -------------------------------------------------------------------


class LinkProblem(StrEnum):
    UNAVAILABLE = "unavailable"
    OWN_PRODUCT = "own_product"  # a creator cannot be their own affiliate


async def link_for(
    session: AsyncSession, user_id: int, kind: str, product_id: int
) -> AffiliateLink | LinkProblem:
    """The learner's personal link for a product, made on first ask."""
    product = await load_product(session, kind, product_id)
    if product is None or not product.published:
        return LinkProblem.UNAVAILABLE
    if await _creator_user(session, product.creator_id) == user_id:
        return LinkProblem.OWN_PRODUCT
    query = select(AffiliateLink).where(
        AffiliateLink.user_id == user_id,
        AffiliateLink.product_kind == kind,
        AffiliateLink.product_id == product_id,
    )
    link = await session.scalar(query)
    if link is not None:
        return link
    link = AffiliateLink(
        code=secrets.token_urlsafe(CODE_BYTES),
        user_id=user_id,
        creator_id=product.creator_id,
        product_kind=kind,
        product_id=product_id,
    )
    try:
        async with session.begin_nested():
            session.add(link)
            await session.flush()
    except IntegrityError:  # the same learner asked twice at once
        found = await session.scalar(query)
        if found is None:
            raise
        return found
    return link


async def _creator_user(session: AsyncSession, creator_id: int) -> int | None:
    return await session.scalar(select(Creator.user_id).where(Creator.id == creator_id))


class ClickOutcome(StrEnum):
    ATTRIBUTED = "attributed"
    KEPT = "kept"  # an earlier click within 30 days keeps the learner
    OWN = "own"  # the affiliate's (or the creator's) own click: counted, not attributed
    FORGED = "forged"


@dataclass(frozen=True, slots=True)
class Click:
    outcome: ClickOutcome
    product_kind: str | None = None
    product_id: int | None = None


async def click(session: AsyncSession, code: str, user_id: int, now: datetime) -> Click:
    if not code or len(code) > MAX_CODE:
        return Click(ClickOutcome.FORGED)
    link = await session.scalar(select(AffiliateLink).where(AffiliateLink.code == code))
    if link is None:
        return Click(ClickOutcome.FORGED)
    kind, product_id = link.product_kind, link.product_id
    await session.execute(
        update(AffiliateLink)
        .where(AffiliateLink.id == link.id)
        .values(clicks=AffiliateLink.clicks + 1)
        .execution_options(synchronize_session=False)
    )
    if link.user_id == user_id or await _creator_user(session, link.creator_id) == user_id:
        return Click(ClickOutcome.OWN, kind, product_id)
    existing = await session.scalar(
        select(AffiliateAttribution).where(
            AffiliateAttribution.user_id == user_id,
            AffiliateAttribution.product_kind == link.product_kind,
            AffiliateAttribution.product_id == link.product_id,
        )
    )
    if existing is not None:
        if existing.clicked_at > now - timedelta(days=ATTRIBUTION_DAYS):
            return Click(ClickOutcome.KEPT, kind, product_id)
        # The first click ran out: this one is the new first click.
        existing.link_id, existing.affiliate_id, existing.clicked_at = link.id, link.user_id, now
        await session.flush()
        return Click(ClickOutcome.ATTRIBUTED, kind, product_id)
    try:
        async with session.begin_nested():
            session.add(
                AffiliateAttribution(
                    user_id=user_id,
                    link_id=link.id,
                    affiliate_id=link.user_id,
                    product_kind=kind,
                    product_id=product_id,
                    clicked_at=now,
                    created_at=now,
                )
            )
            await session.flush()
    except IntegrityError:  # two clicks at once: the other one was first
        return Click(ClickOutcome.KEPT, kind, product_id)
    return Click(ClickOutcome.ATTRIBUTED, kind, product_id)


# --- commissions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Commission:
    affiliate_id: int
    amount_minor: int
    hold_days: int


async def commission_for(
    session: AsyncSession,
    order: Order,
    amount_minor: int,
    now: datetime,
    *,
    automatic: bool = False,
) -> Commission | None:
    """What an affiliate earns on this order: the buyer's first click within 30 days,
    on a product with a programme, never the buyer's own nor the creator's link.

    A plan's renewal (a Stars subscription charged again, or the plan bought again by
    card) earns for the affiliate who earned on the buyer's first purchase of it, however
    long ago: they brought the member, and a later click does not steal them. An
    `automatic` renewal (Stars charging the subscription again) earns for nobody else:
    no click can have brought it about."""
    affiliate_id = await _earlier_earner(session, order)
    if affiliate_id is None and not automatic:
        affiliate_id = await session.scalar(
            select(AffiliateAttribution.affiliate_id).where(
                AffiliateAttribution.user_id == order.user_id,
                AffiliateAttribution.product_kind == order.product_kind,
                AffiliateAttribution.product_id == order.product_id,
                AffiliateAttribution.clicked_at > now - timedelta(days=ATTRIBUTION_DAYS),
            )
        )
    if affiliate_id is None or affiliate_id == order.user_id:
        return None
    if await _creator_user(session, order.creator_id) == affiliate_id:
        return None
    program = await program_for(session, order.creator_id, order.product_kind, order.product_id)
    if program is None or amount_minor <= 0:
        return None
    share = amount_minor * program.percent // 100
    if share <= 0:
        return None
    return Commission(affiliate_id, share, program.hold_days)


async def _earlier_earner(session: AsyncSession, order: Order) -> int | None:
    """For a plan: the affiliate of the buyer's first commission-earning order of it."""
    if order.product_kind != ProductKind.PLAN:
        return None
    return await session.scalar(
        select(AffiliateEntry.affiliate_id)
        .join(Order, Order.id == AffiliateEntry.order_id)
        .where(
            AffiliateEntry.kind == AffiliateEntryKind.COMMISSION,
            AffiliateEntry.buyer_id == order.user_id,
            AffiliateEntry.creator_id == order.creator_id,
            Order.product_kind == order.product_kind,
            Order.product_id == order.product_id,
        )
        .order_by(AffiliateEntry.created_at, AffiliateEntry.id)
        .limit(1)
    )


async def book_commission(
    session: AsyncSession,
    commission: Commission,
    amount_minor: int,
    payment: Payment,
    order: Order,
    now: datetime,
) -> AffiliateEntry:
    """`amount_minor`: what the sale's ledger row booked as commission."""
    entry = AffiliateEntry(
        creator_id=order.creator_id,
        affiliate_id=commission.affiliate_id,
        kind=AffiliateEntryKind.COMMISSION,
        currency=payment.currency,
        amount_minor=amount_minor,
        base_minor=payment.amount_minor,
        payment_id=payment.id,
        order_id=order.id,
        buyer_id=order.user_id,
        payable_at=now + timedelta(days=commission.hold_days),
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    # The affiliate hears once when it becomes payable (a job due then, keyed by it).
    payable.schedule(session, entry, now)
    await session.flush()
    return entry


async def undo_on_refund(
    session: AsyncSession, payment: Payment, now: datetime
) -> AffiliateEntry | None:
    """The refund of a sale that earned a commission: cancelled within the hold,
    clawed back (payable at once, negative) after it."""
    sale = await session.scalar(
        select(AffiliateEntry).where(
            AffiliateEntry.payment_id == payment.id,
            AffiliateEntry.kind == AffiliateEntryKind.COMMISSION,
        )
    )
    if sale is None:
        return None
    held = sale.payable_at > now
    entry = AffiliateEntry(
        creator_id=sale.creator_id,
        affiliate_id=sale.affiliate_id,
        kind=AffiliateEntryKind.CANCEL if held else AffiliateEntryKind.CLAWBACK,
        currency=sale.currency,
        amount_minor=-sale.amount_minor,
        base_minor=-sale.base_minor,
        payment_id=payment.id,
        order_id=sale.order_id,
        buyer_id=sale.buyer_id,
        payable_at=sale.payable_at if held else now,
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    return entry


# --- balances, the creator's report and payouts --------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    creator_id: int
    creator_name: str
    affiliate_id: int
    currency: str
    pending: int
    payable: int
    paid: int
    revenue: int


def _balance_columns(now: datetime):  # type: ignore[no-untyped-def]
    is_payout = AffiliateEntry.kind == AffiliateEntryKind.PAYOUT
    return (
        func.sum(case((AffiliateEntry.payable_at > now, AffiliateEntry.amount_minor), else_=0)),
        func.sum(case((AffiliateEntry.payable_at <= now, AffiliateEntry.amount_minor), else_=0)),
        func.sum(case((is_payout, -AffiliateEntry.amount_minor), else_=0)),
        func.sum(AffiliateEntry.base_minor),
    )


async def balances(
    session: AsyncSession,
    now: datetime,
    *,
    creator_id: int | None = None,
    affiliate_id: int | None = None,
) -> list[Balance]:
    query = (
        select(
            AffiliateEntry.creator_id,
            Creator.display_name,
            AffiliateEntry.affiliate_id,
            AffiliateEntry.currency,
            *_balance_columns(now),
        )
        .join(Creator, Creator.id == AffiliateEntry.creator_id)
        .group_by(
            AffiliateEntry.creator_id,
            Creator.display_name,
            AffiliateEntry.affiliate_id,
            AffiliateEntry.currency,
        )
        .order_by(AffiliateEntry.creator_id, AffiliateEntry.affiliate_id, AffiliateEntry.currency)
    )
    if creator_id is not None:
        query = query.where(AffiliateEntry.creator_id == creator_id)
    if affiliate_id is not None:
        query = query.where(AffiliateEntry.affiliate_id == affiliate_id)
    return [
        Balance(
            r[0], r[1], r[2], r[3], int(r[4] or 0), int(r[5] or 0), int(r[6] or 0), int(r[7] or 0)
        )
        for r in (await session.execute(query)).all()
    ]


@dataclass(slots=True)
class AffiliateRow:
    affiliate_id: int
    name: str
    clicks: int = 0
    starts: int = 0
    buyers: int = 0
    money: list[Balance] = field(default_factory=list)


async def report(session: AsyncSession, creator_id: int, now: datetime) -> list[AffiliateRow]:
    """Per affiliate of this creator: clicks, starts (learners attributed), buyers, and
    per currency the revenue brought and commission pending / payable / paid."""
    rows: dict[int, AffiliateRow] = {}

    def row(affiliate_id: int) -> AffiliateRow:
        return rows.setdefault(affiliate_id, AffiliateRow(affiliate_id, ""))

    clicks = await session.execute(
        select(AffiliateLink.user_id, func.sum(AffiliateLink.clicks))
        .where(AffiliateLink.creator_id == creator_id)
        .group_by(AffiliateLink.user_id)
    )
    for affiliate_id, n in clicks.all():
        row(affiliate_id).clicks = int(n or 0)
    starts = await session.execute(
        select(AffiliateAttribution.affiliate_id, func.count(AffiliateAttribution.id))
        .join(AffiliateLink, AffiliateLink.id == AffiliateAttribution.link_id)
        .where(AffiliateLink.creator_id == creator_id)
        .group_by(AffiliateAttribution.affiliate_id)
    )
    for affiliate_id, n in starts.all():
        row(affiliate_id).starts = int(n or 0)
    buyers = await session.execute(
        select(AffiliateEntry.affiliate_id, func.count(func.distinct(AffiliateEntry.buyer_id)))
        .where(
            AffiliateEntry.creator_id == creator_id,
            AffiliateEntry.kind == AffiliateEntryKind.COMMISSION,
        )
        .group_by(AffiliateEntry.affiliate_id)
    )
    for affiliate_id, n in buyers.all():
        row(affiliate_id).buyers = int(n or 0)
    for balance in await balances(session, now, creator_id=creator_id):
        row(balance.affiliate_id).money.append(balance)
    if rows:
        names = await session.execute(
            select(User.id, User.username, User.first_name).where(User.id.in_(list(rows)))
        )
        for uid, username, first_name in names.all():
            rows[uid].name = f"@{username}" if username else first_name or str(uid)
    return sorted(rows.values(), key=lambda r: (-r.buyers, -r.clicks, r.affiliate_id))


class PayoutProblem(StrEnum):
    UNKNOWN_AFFILIATE = "unknown_affiliate"
    ABOVE_BALANCE = "above_balance"
    BELOW_MIN = "below_min"
    NOT_POSITIVE = "not_positive"


@dataclass(frozen=True, slots=True)
class Payout:
    affiliate_id: int
    currency: str
    amount: int
    payable_after: int


async def find_affiliate(session: AsyncSession, creator_id: int, text: str) -> int | None:
    """An affiliate of this creator by Telegram id or @username."""
    text = text.strip()
    candidates = select(AffiliateLink.user_id).where(AffiliateLink.creator_id == creator_id)
    if text.startswith("@") and 1 < len(text) <= 65:
        uid = await session.scalar(
            select(User.id).where(func.lower(User.username) == text[1:].lower()).limit(1)
        )
    else:
        uid = parsing.telegram_id(text)
    if uid is None:
        return None
    found = await session.scalar(candidates.where(AffiliateLink.user_id == uid).limit(1))
    return found


async def record_payout(
    session: AsyncSession,
    creator_id: int,
    affiliate_id: int,
    currency: str,
    amount: int,
    now: datetime,
) -> Payout | PayoutProblem:
    """Never above what is payable now; one creator's payouts queue on their row."""
    if amount <= 0:
        return PayoutProblem.NOT_POSITIVE
    # Two payouts at once must not both see the whole balance (a no-op on SQLite, whose
    # single writer already serialises them).
    await session.execute(select(Creator.id).where(Creator.id == creator_id).with_for_update())
    payable = await session.scalar(
        select(func.coalesce(func.sum(AffiliateEntry.amount_minor), 0)).where(
            AffiliateEntry.creator_id == creator_id,
            AffiliateEntry.affiliate_id == affiliate_id,
            AffiliateEntry.currency == currency,
            AffiliateEntry.payable_at <= now,
        )
    )
    payable = int(payable or 0)
    if amount > payable:
        return PayoutProblem.ABOVE_BALANCE
    program = await program_for_creator(session, creator_id)
    if (
        program is not None
        and program.min_currency == currency
        and amount < program.min_payout_minor
    ):
        return PayoutProblem.BELOW_MIN
    session.add(
        AffiliateEntry(
            creator_id=creator_id,
            affiliate_id=affiliate_id,
            kind=AffiliateEntryKind.PAYOUT,
            currency=currency,
            amount_minor=-amount,
            base_minor=0,
            payable_at=now,
            created_at=now,
        )
    )
    await session.flush()
    return Payout(affiliate_id, currency, amount, payable - amount)


async def program_for_creator(session: AsyncSession, creator_id: int) -> AffiliateProgram | None:
    return await session.scalar(
        select(AffiliateProgram).where(
            AffiliateProgram.creator_id == creator_id, AffiliateProgram.product_kind.is_(None)
        )
    )


async def programmes(session: AsyncSession, creator_id: int) -> list[AffiliateProgram]:
    return list(
        await session.scalars(
            select(AffiliateProgram)
            .where(AffiliateProgram.creator_id == creator_id)
            .order_by(AffiliateProgram.id)
        )
    )


def group_by_creator(items: list[Balance]) -> dict[tuple[int, str], list[Balance]]:
    grouped: dict[tuple[int, str], list[Balance]] = defaultdict(list)
    for b in items:
        grouped[(b.creator_id, b.creator_name)].append(b)
    return grouped
