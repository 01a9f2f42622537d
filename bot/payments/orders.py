"""Orders: the offer a learner sees, the pending order behind an invoice, and the
re-check Telegram asks for before it takes the money (pre_checkout_query).

State machine: pending → paid → refunded; pending → cancelled (replaced by a newer
invoice) or expired (ORDER_TTL_MINUTES). A late payment of a cancelled or expired
order is still credited (see bot.payments.checkout); nothing else leaves a final state.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import rollups
from bot.config import Settings
from bot.marketplace import promotions
from bot.models import (
    Coupon,
    Event,
    EventKind,
    Order,
    OrderStatus,
    PaymentMethod,
    ProductKind,
    utcnow,
)
from bot.payments import coupons as coupons_service
from bot.payments.products import (
    Product,
    already_owned,
    available_methods,
    for_buyer,
    load_product,
)
from bot.services import access

# Telegram allows 128 bytes of payload; 24 url-safe characters carry 144 random bits.
REF_BYTES = 18
MAX_PAYLOAD_BYTES = 128

# Where a payment can still land and be credited.
CREDITABLE = (OrderStatus.PENDING, OrderStatus.EXPIRED, OrderStatus.CANCELLED)


def new_ref() -> str:
    return secrets.token_urlsafe(REF_BYTES)


@dataclass(frozen=True, slots=True)
class Quote:
    method: str
    currency: str
    list_amount: int
    amount: int

    @property
    def discounted(self) -> bool:
        return self.amount < self.list_amount


def quote(product: Product, method: str, coupon: Coupon | None) -> Quote:
    currency, amount = product.list_price(method)
    return Quote(method, currency, amount, coupons_service.apply(coupon, amount, currency))


class OfferProblem(StrEnum):
    UNAVAILABLE = "unavailable"
    OWNED = "owned"
    NO_METHODS = "no_methods"
    # A bundle whose reduced price is not below its remaining courses bought separately.
    NOT_WORTH = "not_worth"


@dataclass(frozen=True, slots=True)
class Offer:
    product: Product
    quotes: list[Quote] = field(default_factory=list)
    coupon: Coupon | None = None

    @property
    def free(self) -> bool:
        """Nothing to pay: a free product, or a coupon that takes a price to zero."""
        if self.product.is_free:
            return True
        return self.coupon is not None and any(q.amount == 0 for q in self.quotes)

    def quote_for(self, method: str) -> Quote | None:
        return next((q for q in self.quotes if q.method == method), None)


async def make_offer(
    session: AsyncSession,
    user_id: int,
    kind: str,
    product_id: int,
    settings: Settings,
    coupon: Coupon | None = None,
    now: datetime | None = None,
    gift: bool = False,
) -> Offer | OfferProblem:
    """gift: bought for someone else, so owning it is no reason not to sell it."""
    now = now or utcnow()
    product = await load_product(session, kind, product_id)
    if product is None or not product.published:
        return OfferProblem.UNAVAILABLE
    if not gift and await already_owned(session, user_id, kind, product_id, now):
        return OfferProblem.OWNED
    if product.kind == ProductKind.BUNDLE:
        coupon = None  # a bundle's price is its own discount: no promo codes on top
        personal = await for_buyer(session, user_id, product, now)
        if personal is None:
            return OfferProblem.NOT_WORTH
        product = personal
    if (
        coupon is not None
        and await coupons_service.problem_for(session, coupon, product, user_id, now) is not None
    ):
        coupon = None
    quotes = [quote(product, m, coupon) for m in available_methods(product, settings)]
    offer = Offer(product, quotes, coupon)
    if not quotes and not offer.free:
        return OfferProblem.NO_METHODS
    return offer


async def open_order(
    session: AsyncSession,
    user_id: int,
    offer: Offer,
    method: str,
    settings: Settings,
    now: datetime | None = None,
    gift: bool = False,
) -> Order:
    """The pending order behind an invoice (the buyer's own, or a gift: bot.growth.gifts).
    Re-pressing Pay reuses an identical one;
    different terms (a new price, another coupon) cancel the older pending order of the
    same method, so its stale invoice is refused at pre-checkout.

    An order with a coupon holds one reserved use of it until it is paid or has expired;
    raises CouponUsedUp when the code's last use went to someone else meanwhile.
    """
    now = now or utcnow()
    q = offer.quote_for(method)
    if q is None or q.amount <= 0:
        raise ValueError(f"method {method} is not offered")
    product = offer.product
    coupon_id = offer.coupon.id if offer.coupon is not None else None
    pending = list(
        await session.scalars(
            select(Order).where(
                Order.user_id == user_id,
                Order.product_kind == product.kind,
                Order.product_id == product.id,
                Order.method == method,
                Order.status == OrderStatus.PENDING,
                Order.gift == gift,
            )
        )
    )

    def same(order: Order) -> bool:
        return (
            order.currency == q.currency
            and order.amount_minor == q.amount
            and order.coupon_id == coupon_id
            and (order.expires_at is None or order.expires_at > now + timedelta(minutes=5))
        )

    reuse = next((order for order in pending if same(order)), None)
    replaced = [order for order in pending if order is not reuse]
    for order in replaced:
        order.status = OrderStatus.CANCELLED
    # Orders' rows before the coupon's: the lock order every coupon writer keeps.
    await session.flush()
    for order in replaced:
        if order.coupon_id != coupon_id:
            # Replaced by an invoice without this code: its use is free for others.
            # (With the same code the new order takes the use over, in reserve().)
            await coupons_service.release(session, order.id, order.coupon_id)
    if reuse is not None:
        # Its use may have moved to an invoice of another method meanwhile.
        if not await coupons_service.hold(session, reuse, now):
            raise coupons_service.CouponUsedUp
        return reuse
    if coupon_id is not None and not await coupons_service.reserve(
        session, coupon_id, user_id, product.kind, product.id, now
    ):
        raise coupons_service.CouponUsedUp
    order = Order(
        public_ref=new_ref(),
        user_id=user_id,
        creator_id=product.creator_id,
        product_kind=product.kind,
        product_id=product.id,
        method=method,
        currency=q.currency,
        list_amount_minor=q.list_amount,
        amount_minor=q.amount,
        coupon_id=coupon_id,
        coupon_reserved=coupon_id is not None,
        status=OrderStatus.PENDING,
        gift=gift,
        expires_at=now + timedelta(minutes=settings.order_ttl_minutes),
        created_at=now,
    )
    session.add(order)
    session.add(
        Event(
            user_id=user_id,
            kind=EventKind.INVOICE,
            course_id=product.id if product.kind == "course" else None,
            creator_id=product.creator_id,
            data={"method": method, "amount": q.amount, "currency": q.currency},
            created_at=now,
        )
    )
    await session.flush()
    await rollups.invoice_shown(session, order, now)
    return order


async def claim_free(
    session: AsyncSession, user_id: int, offer: Offer, now: datetime | None = None
) -> Order:
    """Access with no invoice: a free product or a 100 % coupon. Paid at zero.

    Raises CouponUsedUp when another learner took the code's last use first; the use is
    taken before anything is granted, in the same transaction."""
    now = now or utcnow()
    product = offer.product
    if offer.coupon is not None and not await coupons_service.take_use(
        session, offer.coupon.id, user_id, product.kind, product.id, now
    ):
        raise coupons_service.CouponUsedUp
    currency, list_amount = product.list_price(
        offer.quotes[0].method if offer.quotes else PaymentMethod.CARD
    )
    order = Order(
        public_ref=new_ref(),
        user_id=user_id,
        creator_id=product.creator_id,
        product_kind=product.kind,
        product_id=product.id,
        method=PaymentMethod.FREE,
        currency=currency,
        list_amount_minor=list_amount,
        amount_minor=0,
        coupon_id=offer.coupon.id if offer.coupon is not None else None,
        status=OrderStatus.PAID,
        paid_at=now,
        created_at=now,
    )
    session.add(order)
    await session.flush()
    await access.grant(
        session,
        user_id,
        product.kind,
        product.id,
        days=product.period_days,
        now=now,
        source_order_id=order.id,
    )
    session.add(
        Event(
            user_id=user_id,
            kind=EventKind.PAID,
            course_id=product.id if product.kind == "course" else None,
            creator_id=product.creator_id,
            data={"order": order.id, "method": PaymentMethod.FREE, "amount": 0},
            created_at=now,
        )
    )
    await rollups.order_credited(session, order, now)
    return order


async def get_order(session: AsyncSession, ref: str) -> Order | None:
    if not ref or len(ref.encode()) > MAX_PAYLOAD_BYTES:
        return None
    return await session.scalar(select(Order).where(Order.public_ref == ref))


class Refusal(StrEnum):
    UNKNOWN_ORDER = "unknown_order"
    NOT_YOURS = "not_yours"
    ALREADY_PAID = "already_paid"
    NOT_PENDING = "not_pending"
    EXPIRED = "expired"
    UNAVAILABLE = "unavailable"
    METHOD_OFF = "method_off"
    OWNED = "owned"
    COUPON_INVALID = "coupon_invalid"
    PRICE_CHANGED = "price_changed"


async def check_pre_checkout(
    session: AsyncSession,
    *,
    payload: str,
    user_id: int,
    currency: str,
    total_amount: int,
    settings: Settings,
    now: datetime | None = None,
) -> Refusal | None:
    """Everything that must still hold when the learner presses Pay; None means go."""
    now = now or utcnow()
    order = await get_order(session, payload)
    if order is None:
        return Refusal.UNKNOWN_ORDER
    if order.user_id != user_id:
        return Refusal.NOT_YOURS
    if order.status == OrderStatus.PAID:
        return Refusal.ALREADY_PAID
    if order.status != OrderStatus.PENDING:
        return Refusal.NOT_PENDING
    if order.expires_at is not None and order.expires_at <= now:
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == OrderStatus.PENDING)
            .values(status=OrderStatus.EXPIRED)
            .execution_options(synchronize_session=False)
        )
        return Refusal.EXPIRED
    if order.product_kind == ProductKind.PROMOTION:
        return await _topup_refusal(session, order, currency, total_amount, settings)
    product = await load_product(session, order.product_kind, order.product_id)
    if product is None or not product.published:
        return Refusal.UNAVAILABLE
    if order.method not in available_methods(product, settings):
        return Refusal.METHOD_OFF
    if not order.gift and await already_owned(session, user_id, product.kind, product.id, now):
        return Refusal.OWNED
    personal = await for_buyer(session, user_id, product, now)
    if personal is None:
        return Refusal.PRICE_CHANGED  # a bundle no longer worth it: owns more since
    product = personal
    coupon = None
    if order.coupon_id is not None:
        coupon = await session.get(Coupon, order.coupon_id)
        if coupons_service.coupon_problem(coupon, product, now, check_uses=False) is not None:
            return Refusal.COUPON_INVALID
        # Its reserved use, or a new one: Telegram charges only after this answer, so a
        # learner whose invoice holds no use is told here, before any money moves.
        if not await coupons_service.hold(session, order, now):
            return Refusal.COUPON_INVALID
    current = quote(product, order.method, coupon)
    if (current.currency, current.amount) != (order.currency, order.amount_minor):
        return Refusal.PRICE_CHANGED
    if (currency.upper(), total_amount) != (order.currency, order.amount_minor):
        return Refusal.PRICE_CHANGED
    return None


async def _topup_refusal(
    session: AsyncSession, order: Order, currency: str, total_amount: int, settings: Settings
) -> Refusal | None:
    """A promotion top-up (bot.marketplace.promotions): its campaign still waits for it."""
    if not settings.payments_stars_enabled:
        return Refusal.METHOD_OFF
    if await promotions.topup_problem(session, order):
        return Refusal.UNAVAILABLE
    if (currency.upper(), total_amount) != (order.currency, order.amount_minor):
        return Refusal.PRICE_CHANGED
    return None


async def expire_stale(session: AsyncSession, now: datetime | None = None) -> int:
    """Mark pending orders past their time as expired (a housekeeping job may call it)."""
    now = now or utcnow()
    result = await session.execute(
        update(Order)
        .where(Order.status == OrderStatus.PENDING, Order.expires_at <= now)
        .values(status=OrderStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
