"""Coupons and promo codes: percent or fixed, per product or creator-wide, limited uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.models import Coupon, CouponKind, utcnow
from bot.money import minor_digits
from bot.payments.pricing import discounted
from bot.payments.products import Product, load_product

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


def coupon_problem(coupon: Coupon | None, product: Product, now: datetime) -> CouponProblem | None:
    """Why this coupon cannot be used for this product now, or None when it can."""
    if coupon is None:
        return CouponProblem.UNKNOWN
    if not coupon.active:
        return CouponProblem.INACTIVE
    if coupon.expires_at is not None and coupon.expires_at <= now:
        return CouponProblem.EXPIRED
    if coupon.max_uses is not None and coupon.used_count >= coupon.max_uses:
        return CouponProblem.USED_UP
    if coupon.creator_id != product.creator_id:
        return CouponProblem.NOT_THIS_PRODUCT
    if coupon.product_kind is not None and (
        coupon.product_kind != product.kind or coupon.product_id != product.id
    ):
        return CouponProblem.NOT_THIS_PRODUCT
    return None


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


async def use_once(session: AsyncSession, coupon_id: int) -> None:
    """Count a use. The payment already happened, so this never refuses."""
    await session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id)
        .values(used_count=Coupon.used_count + 1)
        .execution_options(synchronize_session=False)
    )


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
