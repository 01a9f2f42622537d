"""Money out: refund one payment through its provider, then undo what it bought.

Stars go back through refundStarPayment, card and web payments through a Stripe Refund.
The payment is claimed first (refunded_at set in a SAVEPOINT) so two staff pressing at
once cannot refund twice; if the provider refuses, the claim is rolled back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.growth import affiliates, gifts
from bot.marketplace import bundles
from bot.models import (
    Event,
    EventKind,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    ProductKind,
    utcnow,
)
from bot.payments import ledger
from bot.payments.gateways import AlreadyRefunded, Gateways, NotConfigured, ProviderError
from bot.payments.products import load_product
from bot.services import access

log = logging.getLogger(__name__)


class RefundStatus(StrEnum):
    DONE = "done"
    # The provider had refunded it already (CHARGE_ALREADY_REFUNDED); our books now agree.
    SYNCED = "synced"
    ALREADY = "already"  # refunded here before; nothing to do
    FAILED = "failed"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class RefundResult:
    status: RefundStatus
    payment_id: int | None = None
    order_ref: str | None = None
    user_id: int | None = None
    title: str = ""
    currency: str = ""
    amount: int = 0
    revoked: bool = False
    detail: str = ""


async def find_payment(session: AsyncSession, ref: str) -> Payment | None:
    """A payment by id, by order reference (its credited payment first) or by charge id."""
    ref = ref.strip()
    if not ref or len(ref) > 255:
        return None
    # ASCII digits only: "²".isdigit() is true and int() refuses it.
    if ref.isascii() and ref.isdigit() and len(ref) < 10:
        payment = await session.get(Payment, int(ref))
        if payment is not None:
            return payment
    order_id = await session.scalar(select(Order.id).where(Order.public_ref == ref))
    if order_id is not None:
        payments = list(
            await session.scalars(
                select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)
            )
        )
        credited = [p for p in payments if (p.raw or {}).get("credited")]
        open_ = [p for p in payments if p.refunded_at is None]
        for group in (credited, open_, payments):
            if group:
                return group[-1]
        return None
    return await session.scalar(
        select(Payment)
        .where(
            or_(
                Payment.telegram_payment_charge_id == ref,
                Payment.provider_payment_charge_id == ref,
            )
        )
        .limit(1)
    )


async def _call_provider(payment: Payment, gateways: Gateways) -> None:
    if payment.method == PaymentMethod.STARS:
        if gateways.stars is None or not payment.telegram_payment_charge_id:
            raise NotConfigured("stars")
        await gateways.stars.refund_star_payment(
            payment.user_id, payment.telegram_payment_charge_id
        )
        return
    if payment.method in (PaymentMethod.CARD, PaymentMethod.WEB):
        if gateways.card is None:
            raise NotConfigured("stripe")
        if not payment.provider_payment_charge_id:
            raise ProviderError("no provider charge id recorded for this payment")
        await gateways.card.refund(
            payment.provider_payment_charge_id, idempotency_key=f"refund-payment-{payment.id}"
        )
        return
    raise NotConfigured(payment.method)


async def _revoke_granted(session: AsyncSession, order: Order, now: datetime) -> bool:
    """Take away what this order gave, and only that: access another purchase gave (a
    course owned before its bundle, a later purchase) stays."""
    products = [(order.product_kind, order.product_id)]
    if order.product_kind == ProductKind.BUNDLE:
        courses = await bundles.members(session, order.product_id)
        products = [(ProductKind.COURSE, c.id) for c in courses]
    revoked = False
    for kind, product_id in products:
        ent = await access.get_entitlement(session, order.user_id, kind, product_id)
        if ent is not None and ent.source_order_id == order.id and ent.revoked_at is None:
            await access.revoke(session, order.user_id, kind, product_id, now)
            revoked = True
    return revoked


async def refund_payment(
    session: AsyncSession,
    payment: Payment,
    gateways: Gateways,
    settings: Settings,
    *,
    actor_creator_id: int | None,
    now: datetime | None = None,
) -> RefundResult:
    """Refund a whole payment. actor_creator_id None means the platform admin."""
    now = now or utcnow()
    order = await session.get(Order, payment.order_id)
    if order is None:
        return RefundResult(RefundStatus.NOT_FOUND)
    if actor_creator_id is not None and order.creator_id != actor_creator_id:
        return RefundResult(RefundStatus.FORBIDDEN)
    if order.product_kind == ProductKind.PROMOTION:
        # Stars paid for promotion are held on the promotion balance and partly spent:
        # unused budget goes back with /promote withdraw, never as a refund of the payment.
        return RefundResult(RefundStatus.FORBIDDEN)
    product = await load_product(session, order.product_kind, order.product_id)
    base = RefundResult(
        RefundStatus.ALREADY,
        payment_id=payment.id,
        order_ref=order.public_ref,
        user_id=payment.user_id,
        title=product.title if product else "",
        currency=payment.currency,
        amount=payment.amount_minor,
    )
    if payment.refunded_at is not None:
        return base

    status = RefundStatus.DONE
    savepoint = await session.begin_nested()
    claimed = await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.refunded_at.is_(None))
        .values(refunded_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        await savepoint.rollback()
        return base
    try:
        await _call_provider(payment, gateways)
    except AlreadyRefunded:
        status = RefundStatus.SYNCED
    except ProviderError as exc:
        await savepoint.rollback()
        log.warning("refund of payment %s failed: %s", payment.id, exc.detail)
        kind = "not_configured" if isinstance(exc, NotConfigured) else "provider"
        return replace(base, status=RefundStatus.FAILED, detail=f"{kind}:{exc.detail}")
    await session.refresh(payment)

    fee_bps = await ledger.fee_bps_for(session, order.creator_id, settings)
    await ledger.book_refund(session, payment, order.creator_id, fee_bps, now)
    # The affiliate's commission goes with the sale: cancelled in the hold, else clawed back.
    await affiliates.undo_on_refund(session, payment, now)
    revoked = False
    if (payment.raw or {}).get("credited") and order.gift:
        order.status = OrderStatus.REFUNDED
        # An open gift link is void; a claimed gift's recipient loses what it gave.
        revoked = await gifts.on_refund(session, order, now)
    elif (payment.raw or {}).get("credited"):
        order.status = OrderStatus.REFUNDED
        # The revoke's hooks stop the drip and revoke the course's certificate (drip.install).
        revoked = await _revoke_granted(session, order, now)
    session.add(
        Event(
            user_id=payment.user_id,
            kind=EventKind.REFUNDED,
            course_id=order.product_id if order.product_kind == "course" else None,
            creator_id=order.creator_id,
            data={"order": order.id, "payment": payment.id, "amount": payment.amount_minor},
            created_at=now,
        )
    )
    await session.flush()
    await savepoint.commit()
    return replace(base, status=status, revoked=revoked)
