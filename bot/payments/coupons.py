"""Coupons and promo codes: percent or fixed, per product or creator-wide, limited uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot import parsing
from bot.models import Coupon, CouponKind, Order, utcnow
from bot.money import minor_digits
from bot.payments.pricing import discounted
from bot.payments.products import Product, load_product

log = logging.getLogger(__name__)

CODE_RE = re.compile(r"^[A-Z0-9_-]{3,32}$")


class CouponProblem(StrEnum):
    UNKNOWN = "unknown"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    USED_UP = "used_up"
    NOT_THIS_PRODUCT = "not_this_product"


def coupon_tag(secret: str, user_id: int, coupon_id: int) -> str:
    """A short MAC that binds a coupon to the learner who typed its code, so a coupon id in
    a button cannot be guessed or passed around (callback data is client-supplied)."""
    mac = hmac.new(secret.encode(), f"coupon:{user_id}:{coupon_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:6]).decode()


def tag_ok(secret: str, user_id: int, coupon_id: int, tag: str) -> bool:
    return hmac.compare_digest(coupon_tag(secret, user_id, coupon_id), tag)


def normalize_code(code: str) -> str:
    return code.strip().upper()


def coupon_problem(
    coupon: Coupon | None,
    product: Product,
    now: datetime,
    *,
    own_reservations: int = 0,
    check_uses: bool = True,
) -> CouponProblem | None:
    """Why this coupon cannot be used for this product now, or None when it can.

    Uses already reserved by open invoices count as taken, except `own_reservations`
    (the asking learner's own). This is advice for what to show; only the conditional
    UPDATEs below (reserve, take_use) really take a use.
    """
    if coupon is None:
        return CouponProblem.UNKNOWN
    if not coupon.active:
        return CouponProblem.INACTIVE
    if coupon.expires_at is not None and coupon.expires_at <= now:
        return CouponProblem.EXPIRED
    # reserved_count is None on a coupon not yet flushed (the column default applies then).
    taken = coupon.used_count + (coupon.reserved_count or 0) - own_reservations
    if check_uses and coupon.max_uses is not None and taken >= coupon.max_uses:
        return CouponProblem.USED_UP
    if coupon.creator_id != product.creator_id:
        return CouponProblem.NOT_THIS_PRODUCT
    if coupon.product_kind is not None and (
        coupon.product_kind != product.kind or coupon.product_id != product.id
    ):
        return CouponProblem.NOT_THIS_PRODUCT
    return None


async def problem_for(
    session: AsyncSession, coupon: Coupon | None, product: Product, user_id: int, now: datetime
) -> CouponProblem | None:
    """coupon_problem for one learner: a use their own open invoice holds is theirs."""
    problem = coupon_problem(coupon, product, now)
    if problem != CouponProblem.USED_UP or coupon is None:
        return problem
    own = await _own_holder(session, user_id, product.kind, product.id, coupon.id)
    return coupon_problem(coupon, product, now, own_reservations=1 if own else 0)


def applies_to_currency(coupon: Coupon, currency: str) -> bool:
    """Percent coupons apply to any price; fixed ones only to prices in their currency."""
    if coupon.kind == CouponKind.PERCENT:
        return True
    return (coupon.currency or "").upper() == currency.upper()


def apply(coupon: Coupon | None, amount: int, currency: str) -> int:
    if coupon is None or not applies_to_currency(coupon, currency):
        return amount
    return discounted(amount, coupon.kind, coupon.value)


async def find_code(session: AsyncSession, code: str) -> Coupon | None:
    code = normalize_code(code)
    if not CODE_RE.match(code):
        return None
    return await session.scalar(select(Coupon).where(Coupon.code == code))


# --- uses: reserved by an open invoice, taken when paid ----------------------------------
#
# Every step is one conditional UPDATE whose WHERE re-checks the limit, so two learners
# racing for the last use cannot both win: PostgreSQL re-evaluates the WHERE on the row
# the other transaction committed, SQLite runs one writer at a time. Nothing reads the
# counters first and writes them afterwards.

# A payment Telegram approved at pre-checkout just before its order expired still lands
# a moment later; its reservation is kept this long past the expiry for it.
RESERVATION_GRACE = timedelta(minutes=15)
# Reservations one housekeeping run frees at most; the next run (minutes later) goes on.
RELEASE_BATCH = 1000


class CouponUsedUp(Exception):
    """The code's last use went to someone else while this learner was choosing."""


def _has_room(now: datetime) -> ColumnElement[bool]:
    return and_(
        Coupon.active.is_(True),
        or_(Coupon.expires_at.is_(None), Coupon.expires_at > now),
        or_(Coupon.max_uses.is_(None), Coupon.used_count + Coupon.reserved_count < Coupon.max_uses),
    )


def _one_fewer_reserved() -> ColumnElement[int]:
    # Never below zero, whatever a hand edit of the table did.
    return case((Coupon.reserved_count > 0, Coupon.reserved_count - 1), else_=0)


async def _changed(session: AsyncSession, statement: Any) -> bool:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


async def _own_holder(
    session: AsyncSession,
    user_id: int,
    product_kind: str,
    product_id: int,
    coupon_id: int,
    exclude_order_id: int | None = None,
) -> list[int]:
    """This learner's orders for this product that hold a use of this coupon."""
    query = select(Order.id).where(
        Order.user_id == user_id,
        Order.product_kind == product_kind,
        Order.product_id == product_id,
        Order.coupon_id == coupon_id,
        Order.coupon_reserved.is_(True),
    )
    if exclude_order_id is not None:
        query = query.where(Order.id != exclude_order_id)
    return list(await session.scalars(query))


async def _unhold(session: AsyncSession, order_id: int) -> bool:
    """Take the reservation off an order; True if it had one (and now nobody else will)."""
    return await _changed(
        session,
        update(Order)
        .where(Order.id == order_id, Order.coupon_reserved.is_(True))
        .values(coupon_reserved=False),
    )


async def _take_own(
    session: AsyncSession,
    user_id: int,
    product_kind: str,
    product_id: int,
    coupon_id: int,
    exclude_order_id: int | None = None,
) -> bool:
    """Move a reservation this learner's other order holds (another method, an older
    invoice) to the caller: one learner buying one product needs one use."""
    for order_id in await _own_holder(
        session, user_id, product_kind, product_id, coupon_id, exclude_order_id
    ):
        if await _unhold(session, order_id):
            return True
    return False


async def reserve(
    session: AsyncSession,
    coupon_id: int,
    user_id: int,
    product_kind: str,
    product_id: int,
    now: datetime,
    order_id: int | None = None,
) -> bool:
    """Hold one use for an order being opened (or checked at pre-checkout): the
    learner's own held use if they have one, else a new one if the code has room.
    The caller marks its order coupon_reserved when this returns True."""
    if await _take_own(session, user_id, product_kind, product_id, coupon_id, order_id):
        return True
    return await _changed(
        session,
        update(Coupon)
        .where(Coupon.id == coupon_id, _has_room(now))
        .values(reserved_count=Coupon.reserved_count + 1),
    )


async def hold(session: AsyncSession, order: Order, now: datetime) -> bool:
    """True when this order holds a use of its coupon, taking one if it can."""
    if order.coupon_id is None or order.coupon_reserved:
        return True
    # The order's row first, the coupon's after: every writer here locks in that order,
    # so two of them cannot wait on each other (PostgreSQL).
    if not await _changed(
        session,
        update(Order)
        .where(Order.id == order.id, Order.coupon_reserved.is_(False))
        .values(coupon_reserved=True),
    ):
        return True  # a concurrent check of the same order took it
    held = await reserve(
        session, order.coupon_id, order.user_id, order.product_kind, order.product_id, now, order.id
    )
    if not held:
        await _unhold(session, order.id)
    set_committed_value(order, "coupon_reserved", held)
    return held


async def release(session: AsyncSession, order_id: int, coupon_id: int | None) -> None:
    """Give an order's reserved use back to the code (an abandoned or replaced invoice)."""
    if await _unhold(session, order_id) and coupon_id is not None:
        await session.execute(
            update(Coupon)
            .where(Coupon.id == coupon_id)
            .values(reserved_count=_one_fewer_reserved())
            .execution_options(synchronize_session=False)
        )


async def take_use(
    session: AsyncSession,
    coupon_id: int,
    user_id: int,
    product_kind: str,
    product_id: int,
    now: datetime,
) -> bool:
    """Count a use at once, for access with nothing to pay (a 100 % code); False when the
    code has no room left (another learner got the last use first)."""
    if await _take_own(session, user_id, product_kind, product_id, coupon_id):
        await _reserved_to_used(session, coupon_id)
        return True
    return await _changed(
        session,
        update(Coupon)
        .where(Coupon.id == coupon_id, _has_room(now))
        .values(used_count=Coupon.used_count + 1),
    )


async def _reserved_to_used(session: AsyncSession, coupon_id: int) -> None:
    await session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id)
        .values(used_count=Coupon.used_count + 1, reserved_count=_one_fewer_reserved())
        .execution_options(synchronize_session=False)
    )


async def finalise_use(session: AsyncSession, order: Order) -> None:
    """A paid order's use: its reservation (or its learner's other order's) becomes a use.
    The money is taken, so this never refuses: a payment that arrives after its
    reservation was freed (long past the order's expiry) counts a use even beyond the
    limit, and says so in the log."""
    if order.coupon_id is None:
        return
    held = await _unhold(session, order.id) or await _take_own(
        session, order.user_id, order.product_kind, order.product_id, order.coupon_id, order.id
    )
    set_committed_value(order, "coupon_reserved", False)
    if held:
        await _reserved_to_used(session, order.coupon_id)
        return
    over = not await _changed(
        session,
        update(Coupon)
        .where(
            Coupon.id == order.coupon_id,
            or_(
                Coupon.max_uses.is_(None),
                Coupon.used_count + Coupon.reserved_count < Coupon.max_uses,
            ),
        )
        .values(used_count=Coupon.used_count + 1),
    )
    if over:
        await session.execute(
            update(Coupon)
            .where(Coupon.id == order.coupon_id)
            .values(used_count=Coupon.used_count + 1)
            .execution_options(synchronize_session=False)
        )
        log.warning(
            "coupon %s: late payment of order %s counted a use beyond its limit",
            order.coupon_id,
            order.public_ref,
        )


async def release_expired(session: AsyncSession, now: datetime) -> int:
    """Free the uses held by orders that expired more than RESERVATION_GRACE ago."""
    stale = (
        await session.execute(
            select(Order.id, Order.coupon_id)
            .where(Order.coupon_reserved.is_(True), Order.expires_at <= now - RESERVATION_GRACE)
            .order_by(Order.id)
            .limit(RELEASE_BATCH)
        )
    ).all()
    # All the orders first, then the coupons (the lock order of hold() and checkout).
    freed: Counter[int] = Counter()
    for order_id, coupon_id in stale:
        if await _unhold(session, order_id) and coupon_id is not None:
            freed[coupon_id] += 1
    for coupon_id, count in sorted(freed.items()):
        await session.execute(
            update(Coupon)
            .where(Coupon.id == coupon_id)
            .values(
                reserved_count=case(
                    (Coupon.reserved_count > count, Coupon.reserved_count - count), else_=0
                )
            )
            .execution_options(synchronize_session=False)
        )
    return sum(freed.values())


class CouponSpecError(ValueError):
    """A creator's /coupon command did not make sense; the message says why."""


@dataclass(frozen=True, slots=True)
class CouponSpec:
    code: str
    kind: str
    value: int
    currency: str | None
    product_kind: str | None
    product_id: int | None
    max_uses: int | None
    days: int | None


VALUE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([A-Za-z]{3})$")


def parse_value(text: str) -> tuple[str, int, str | None]:
    """ "20%" → percent 20; "5.50USD" → fixed 550 USD; "100XTR" → fixed 100 Stars."""
    text = text.strip()
    if text.endswith("%") and (percent := parsing.whole(text[:-1], 0, 1000)) is not None:
        return CouponKind.PERCENT, percent, None
    match = VALUE_RE.match(text)
    if match is None:
        raise CouponSpecError("value")
    currency = match.group(2).upper()
    try:
        digits = minor_digits(currency)
        minor = Decimal(match.group(1)).scaleb(digits)
    except (InvalidOperation, ValueError, KeyError) as exc:
        raise CouponSpecError("value") from exc
    if minor != minor.to_integral_value():
        raise CouponSpecError("value")  # more decimals than the currency has
    if minor.scaleb(-digits) > parsing.MAX_PRICE_MAJOR:
        raise CouponSpecError("amount")  # no price is that high: it only overflows
    return CouponKind.FIXED, int(minor), currency


def parse_spec(args: list[str]) -> tuple[CouponSpec, int | None]:
    """`CODE VALUE [course=ID|plan=ID] [uses=N] [days=N] [creator=ID]` → (spec, creator)."""
    if len(args) < 2:
        raise CouponSpecError("usage")
    kind, value, currency = parse_value(args[1])
    options: dict[str, int] = {}
    for arg in args[2:]:
        key, sep, raw = arg.partition("=")
        if not sep or key not in ("course", "plan", "uses", "days", "creator"):
            raise CouponSpecError("usage")
        # Bounded here so that an expiry date or a use count can always be computed.
        number: int | None
        if key == "days":
            number = parsing.days(raw)
        elif key == "uses":
            number = parsing.whole(raw, 1, parsing.MAX_COUNT)
        else:
            number = parsing.record_id(raw)
        if number is None:
            raise CouponSpecError(key if key in ("days", "uses") else "usage")
        options[key] = number
    if "course" in options and "plan" in options:
        raise CouponSpecError("usage")
    product_kind = "course" if "course" in options else "plan" if "plan" in options else None
    spec = CouponSpec(
        code=args[0],
        kind=kind,
        value=value,
        currency=currency,
        product_kind=product_kind,
        product_id=options.get("course", options.get("plan")),
        max_uses=options.get("uses"),
        days=options.get("days"),
    )
    return spec, options.get("creator")


async def create_coupon(
    session: AsyncSession, creator_id: int, spec: CouponSpec, now: datetime | None = None
) -> Coupon:
    now = now or utcnow()
    code = normalize_code(spec.code)
    if not CODE_RE.match(code):
        raise CouponSpecError("code")
    if spec.kind == CouponKind.PERCENT and not 1 <= spec.value <= 100:
        raise CouponSpecError("percent")
    if spec.kind == CouponKind.FIXED and (spec.value <= 0 or not spec.currency):
        raise CouponSpecError("fixed")
    if spec.product_kind is not None:
        product = await load_product(session, spec.product_kind, spec.product_id or 0)
        if product is None or product.creator_id != creator_id:
            raise CouponSpecError("product")
    if await session.scalar(select(Coupon.id).where(Coupon.code == code)) is not None:
        raise CouponSpecError("taken")
    coupon = Coupon(
        code=code,
        creator_id=creator_id,
        product_kind=spec.product_kind,
        product_id=spec.product_id,
        kind=spec.kind,
        value=spec.value,
        currency=spec.currency.upper() if spec.currency else None,
        max_uses=spec.max_uses,
        used_count=0,
        expires_at=now + timedelta(days=spec.days) if spec.days else None,
        active=True,
    )
    session.add(coupon)
    await session.flush()
    return coupon


async def list_coupons(session: AsyncSession, creator_id: int | None) -> list[Coupon]:
    query = select(Coupon).order_by(Coupon.id)
    if creator_id is not None:
        query = query.where(Coupon.creator_id == creator_id)
    return list(await session.scalars(query))


async def deactivate(session: AsyncSession, code: str, creator_id: int | None) -> bool:
    coupon = await find_code(session, code)
    if coupon is None or (creator_id is not None and coupon.creator_id != creator_id):
        return False
    coupon.active = False
    return True
