"""Money in: record a payment exactly once, then credit it or mark it for a refund.

One transaction (the caller's) holds all of it: the payment row, the order going to
`paid`, the entitlement (bot.services.access.grant, whose hooks start drip and group
access), the funnel event and the ledger. Redelivered updates and webhook retries hit
the unique provider ids and change nothing; concurrent duplicates lose on the unique
index inside a SAVEPOINT and are reported as duplicates too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import rollups
from bot.analytics.sources import Source
from bot.config import Settings
from bot.growth import affiliates, gifts
from bot.marketplace import promotions
from bot.models import (
    Event,
    EventKind,
    LedgerEntry,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    ProductKind,
    utcnow,
)
from bot.payments import coupons as coupons_service
from bot.payments import ledger, questions
from bot.payments.orders import CREDITABLE, get_order
from bot.payments.products import already_owned, grant_order, load_product
from bot.services import access

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    CREDITED = "credited"
    DUPLICATE = "duplicate"  # seen before: nothing changed
    REFUND_DUE = "refund_due"  # recorded, but access was not granted: give the money back
    UNKNOWN_ORDER = "unknown_order"  # no order behind the payload: give the money back


class RefundReason(StrEnum):
    ALREADY_PAID = "already_paid"
    OWNED = "owned"
    ORDER_REFUNDED = "order_refunded"
    PRODUCT_GONE = "product_gone"
    NOT_YOURS = "not_yours"
    # Charged another amount or currency than the order asks: never access for less.
    AMOUNT_DIFFERS = "amount_differs"


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: Outcome
    user_id: int
    currency: str
    amount: int
    payment_id: int | None = None
    order_ref: str | None = None
    product_kind: str | None = None
    product_id: int | None = None
    title: str = ""
    # Credited although the order had expired, been replaced or repriced meanwhile.
    late: bool = False
    reason: RefundReason | None = None
    # Telegram's charge id (or Stripe's event id) and the provider's: what a refund of
    # money that could not be booked against an order needs.
    charge_id: str | None = None
    provider_charge_id: str | None = None
    # A gift's claim link token (bot.growth.gifts), for the buyer's receipt.
    gift_token: str | None = None


async def _existing(
    session: AsyncSession,
    method: str,
    telegram_charge_id: str | None,
    provider_charge_id: str | None,
    external_event_id: str | None,
) -> Payment | None:
    conditions = []
    if telegram_charge_id:
        conditions.append(Payment.telegram_payment_charge_id == telegram_charge_id)
    if external_event_id:
        conditions.append(Payment.external_event_id == external_event_id)
    if method == PaymentMethod.WEB and provider_charge_id:
        # Stripe may send more than one event for the same checkout (completed, then
        # async_payment_succeeded): the payment intent identifies the money.
        conditions.append(
            (Payment.method == PaymentMethod.WEB)
            & (Payment.provider_payment_charge_id == provider_charge_id)
        )
    if not conditions:
        return None
    return await session.scalar(select(Payment).where(or_(*conditions)).limit(1))


async def record_payment(
    session: AsyncSession,
    *,
    payload: str,
    payer_id: int | None,
    method: str,
    currency: str,
    amount: int,
    settings: Settings,
    telegram_charge_id: str | None = None,
    provider_charge_id: str | None = None,
    external_event_id: str | None = None,
    raw: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> PaymentResult:
    """Book money that has already been taken. Never raises for business reasons."""
    now = now or utcnow()
    currency = currency.upper()
    provider_charge_id = provider_charge_id or None
    order = await get_order(session, payload)
    user_id = payer_id if payer_id is not None else (order.user_id if order else 0)
    charge = telegram_charge_id or external_event_id
    base = PaymentResult(
        Outcome.UNKNOWN_ORDER,
        user_id,
        currency,
        amount,
        charge_id=charge,
        provider_charge_id=provider_charge_id,
    )
    if order is None:
        log.error("payment %s for unknown payload %r", charge, payload)
        return base
    base = replace(base, order_ref=order.public_ref)
    dup = await _existing(
        session, method, telegram_charge_id, provider_charge_id, external_event_id
    )
    if dup is not None:
        return replace(base, outcome=Outcome.DUPLICATE, payment_id=dup.id)

    payment = Payment(
        order_id=order.id,
        user_id=user_id,
        method=method,
        currency=currency,
        amount_minor=amount,
        telegram_payment_charge_id=telegram_charge_id,
        provider_payment_charge_id=provider_charge_id,
        external_event_id=external_event_id,
        raw={**(raw or {}), "credited": False},
        is_recurring=bool((raw or {}).get("is_recurring")),
        subscription_expires_at=_unix((raw or {}).get("subscription_expiration_date")),
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(payment)
            await session.flush()
    except IntegrityError:
        # A concurrent delivery of the same payment committed first.
        log.info("duplicate payment %s lost the race", charge)
        return replace(base, outcome=Outcome.DUPLICATE)

    if order.product_kind == ProductKind.PROMOTION:
        # A creator's promotion top-up: held on the promotion balance, no access to grant.
        campaign = await promotions.credit_topup(session, order, payment, now)
        return replace(
            base,
            # No campaign (its course was deleted): nothing to hold the Stars for, so
            # they go back like money for an unknown invoice.
            outcome=Outcome.CREDITED if campaign else Outcome.UNKNOWN_ORDER,
            payment_id=payment.id,
            product_kind=order.product_kind,
            product_id=campaign.id if campaign else order.product_id,
        )
    product = await load_product(session, order.product_kind, order.product_id)
    fee_bps = await ledger.fee_bps_for(session, order.creator_id, settings)

    async def book(commission: int = 0) -> LedgerEntry:
        # The money arrived whatever happens next: every way out below books it. A
        # refund, if due, books the exact negation.
        return await ledger.book_sale(
            session, payment, order.creator_id, fee_bps, now, commission_minor=commission
        )

    info = replace(
        base,
        payment_id=payment.id,
        product_kind=order.product_kind,
        product_id=order.product_id,
        title=product.title if product else "",
    )

    if product is not None and _is_renewal(order, user_id, raw or {}):
        # A Stars subscription charged again: the same paid order, one more period.
        payment.raw = {**payment.raw, "credited": True}
        # The affiliate who brought the member earns on each renewal too, in this
        # transaction (a redelivered renewal is a duplicate above and books nothing).
        await _book_with_commission(session, book, order, payment, amount, now, automatic=True)
        await access.grant(
            session,
            order.user_id,
            order.product_kind,
            order.product_id,
            days=product.period_days or SUBSCRIPTION_DAYS,
            now=now,
            source_order_id=order.id,
        )
        session.add(
            Event(
                user_id=order.user_id,
                kind=EventKind.PAID,
                creator_id=order.creator_id,
                data={"order": order.id, "method": method, "amount": amount, "renewal": True},
                created_at=now,
            )
        )
        await rollups.order_credited(session, order, now)
        await session.flush()
        return replace(info, outcome=Outcome.CREDITED)
    reason = await _refusal(session, order, user_id, product is not None, now)
    if reason is None and (order.currency != currency or order.amount_minor != amount):
        # Booked as money received (above) and given back; the order keeps its terms.
        log.warning(
            "payment %s of %s %s for order %s asking %s %s: refund due",
            charge,
            amount,
            currency,
            order.public_ref,
            order.amount_minor,
            order.currency,
        )
        reason = RefundReason.AMOUNT_DIFFERS
    if reason is not None:
        await book()
        return replace(info, outcome=Outcome.REFUND_DUE, reason=reason)
    # Expired or replaced meanwhile, but paid in full: credited.
    late = order.status != OrderStatus.PENDING
    won = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status.in_(CREDITABLE))
        .values(status=OrderStatus.PAID, paid_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(won, "rowcount", 0):
        # Another payment of the same order got there first.
        await book()
        return replace(info, outcome=Outcome.REFUND_DUE, reason=RefundReason.ALREADY_PAID)
    await session.refresh(order)
    payment.raw = {**payment.raw, "credited": True}
    assert product is not None
    if order.product_kind == ProductKind.QUESTION:
        # A question buys an answer, not access: no entitlement, no funnel step.
        await book()
        await questions.credit(session, order, now)
        await session.flush()
        return replace(info, outcome=Outcome.CREDITED, late=late)
    # An affiliate's commission is booked with the sale, in this transaction.
    commission = await _book_with_commission(session, book, order, payment, amount, now)
    if order.gift:
        order.source = Source.GIFT
    elif commission is not None:
        order.source = Source.AFFILIATE
    gift_token: str | None = None
    if order.gift:
        # Bought for someone else: access waits behind the claim link.
        gift_token = (await gifts.open_gift(session, order, now)).token
    else:
        await grant_order(session, order, product, now)
    # The use its invoice reserved becomes a use (bot.payments.coupons).
    await coupons_service.finalise_use(session, order)
    session.add(
        Event(
            user_id=order.user_id,
            kind=EventKind.PAID,
            course_id=order.product_id if order.product_kind == "course" else None,
            creator_id=order.creator_id,
            data={
                "order": order.id,
                "method": method,
                "amount": amount,
                "currency": currency,
                **({"gift": True} if order.gift else {}),
            },
            created_at=now,
        )
    )
    await rollups.order_credited(session, order, now)
    await session.flush()
    return replace(info, outcome=Outcome.CREDITED, late=late, gift_token=gift_token)


SUBSCRIPTION_DAYS = 30


async def _book_with_commission(
    session: AsyncSession,
    book: Callable[[int], Awaitable[LedgerEntry]],
    order: Order,
    payment: Payment,
    amount: int,
    now: datetime,
    *,
    automatic: bool = False,
) -> affiliates.Commission | None:
    """The sale's ledger row with the affiliate's share in it, and the affiliate's own
    entry for that share: one transaction, gross = fee + net + commission."""
    commission = await affiliates.commission_for(session, order, amount, now, automatic=automatic)
    sale = await book(commission.amount_minor if commission else 0)
    if commission is not None and sale.commission_minor > 0:
        await affiliates.book_commission(
            session, commission, sale.commission_minor, payment, order, now
        )
    return commission


def _unix(value: object) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):  # aiogram dumps DateTime fields as ISO text in JSON mode
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _is_renewal(order: Order, payer_id: int, raw: dict[str, Any]) -> bool:
    """A recurring (not the first) Stars subscription payment of an already paid order."""
    return (
        bool(raw.get("is_recurring"))
        and not raw.get("is_first_recurring")
        and order.status == OrderStatus.PAID
        and order.user_id == payer_id
        and order.product_kind == ProductKind.PLAN
    )


async def _refusal(
    session: AsyncSession, order: Order, payer_id: int, product_exists: bool, now: datetime
) -> RefundReason | None:
    """Why this payment must not be credited, or None."""
    if order.user_id != payer_id:
        return RefundReason.NOT_YOURS
    if order.status == OrderStatus.PAID:
        return RefundReason.ALREADY_PAID
    if order.status == OrderStatus.REFUNDED:
        return RefundReason.ORDER_REFUNDED
    if not product_exists:
        return RefundReason.PRODUCT_GONE
    if not order.gift and await already_owned(
        session, order.user_id, order.product_kind, order.product_id, now
    ):
        return RefundReason.OWNED
    return None
