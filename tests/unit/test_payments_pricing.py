"""Coupon and fee arithmetic: property tests over integer minor units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.payments.coupons import CouponSpecError, parse_spec, parse_value
from bot.payments.pricing import discounted, percent_to_bps, split_fee

amounts = st.integers(min_value=0, max_value=10**9)


@given(amount=amounts, pct=st.integers(min_value=-50, max_value=200))
def test_percent_coupon_never_negative_never_above_price(amount: int, pct: int) -> None:
    price = discounted(amount, "percent", pct)
    assert 0 <= price <= amount
    assert isinstance(price, int)
    # Rounded half up to a whole minor unit: within half a unit of the exact value.
    exact = Decimal(amount) * (100 - max(0, min(100, pct))) / 100
    assert abs(Decimal(price) - exact) <= Decimal("0.5")


@given(amount=amounts, value=st.integers(min_value=-(10**9), max_value=10**10))
def test_fixed_coupon_never_negative_never_above_price(amount: int, value: int) -> None:
    price = discounted(amount, "fixed", value)
    assert 0 <= price <= amount
    if 0 <= value <= amount:
        assert price == amount - value


@given(amount=amounts)
def test_full_percent_is_free_and_zero_percent_is_full_price(amount: int) -> None:
    assert discounted(amount, "percent", 100) == 0
    assert discounted(amount, "percent", 0) == amount


@given(amount=amounts, bps=st.integers(min_value=-100, max_value=20_000))
def test_fee_plus_net_is_the_amount(amount: int, bps: int) -> None:
    fee, net = split_fee(amount, bps)
    assert fee + net == amount
    assert 0 <= fee <= amount and 0 <= net <= amount
    exact = Decimal(amount) * max(0, min(10_000, bps)) / 10_000
    assert abs(Decimal(fee) - exact) <= Decimal("0.5")


@given(
    amount=amounts,
    pct=st.integers(min_value=0, max_value=100),
    fee_percent=st.decimals(min_value=0, max_value=100, places=2),
)
def test_coupon_then_fee_stays_consistent(amount: int, pct: int, fee_percent: Decimal) -> None:
    price = discounted(amount, "percent", pct)
    fee, net = split_fee(price, percent_to_bps(fee_percent))
    assert fee + net == price and fee >= 0 and net >= 0


def test_examples() -> None:
    assert discounted(1999, "percent", 15) == 1699  # 299.85 off → 300 off
    assert discounted(1500, "percent", 33) == 1005  # yen: 495 off, no minor units
    assert split_fee(1999, 1000) == (200, 1799)
    assert split_fee(5, 1000) == (1, 4)  # 0.5 rounds half up
    assert percent_to_bps("12.5") == 1250
    with pytest.raises(ValueError):
        split_fee(-1, 1000)
    with pytest.raises(ValueError):
        discounted(100, "bogus", 1)


def test_parse_coupon_values() -> None:
    assert parse_value("20%") == ("percent", 20, None)
    assert parse_value("5.50usd") == ("fixed", 550, "USD")
    assert parse_value("500JPY") == ("fixed", 500, "JPY")
    assert parse_value("50XTR") == ("fixed", 50, "XTR")
    for bad in ("5.5JPY", "1.234USD", "abc", "%", "10"):
        with pytest.raises(CouponSpecError):
            parse_value(bad)
    spec, creator = parse_spec(["spring", "20%", "course=3", "uses=10", "days=7"])
    assert (spec.product_kind, spec.product_id, spec.max_uses, spec.days) == ("course", 3, 10, 7)
    assert creator is None
    with pytest.raises(CouponSpecError):
        parse_spec(["x", "20%", "course=1", "plan=2"])
    with pytest.raises(CouponSpecError):
        parse_spec(["x", "20%", "uses=-1"])


def test_payment_callbacks_fit_telegram_limit() -> None:
    from bot.keyboards.payments import LinkCB, PayCB, PromoCB

    big = 2**31 - 1  # the largest id a 32-bit primary key reaches
    for packed in (
        PayCB(k="course", id=big, m="stars", cp=big, t="A" * 8).pack(),
        LinkCB(k="course", id=big, m="card", cp=big, t="A" * 8).pack(),
        PromoCB(k="course", id=big).pack(),
    ):
        assert len(packed.encode()) <= 64, packed


def test_coupon_rules() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.models import Coupon
    from bot.payments.coupons import CouponProblem, apply, coupon_problem
    from bot.payments.products import Product

    now = datetime.now(UTC)
    product = Product("course", 3, 9, "T", "", 1999, "USD", 500, True, True, True, None)

    def coupon(**kw: object) -> Coupon:
        values: dict[str, object] = {
            "code": "X",
            "creator_id": 9,
            "kind": "percent",
            "value": 10,
            "active": True,
            "used_count": 0,
            "max_uses": None,
            "expires_at": None,
            "product_kind": None,
            "product_id": None,
            "currency": None,
        }
        values.update(kw)
        return Coupon(**values)

    assert coupon_problem(coupon(), product, now) is None
    assert coupon_problem(None, product, now) == CouponProblem.UNKNOWN
    assert coupon_problem(coupon(active=False), product, now) == CouponProblem.INACTIVE
    past = now - timedelta(seconds=1)
    assert coupon_problem(coupon(expires_at=past), product, now) == CouponProblem.EXPIRED
    used = coupon(max_uses=2, used_count=2)
    assert coupon_problem(used, product, now) == CouponProblem.USED_UP
    # Uses held by open invoices count as taken, except the asking learner's own.
    held = coupon(max_uses=2, used_count=1, reserved_count=1)
    assert coupon_problem(held, product, now) == CouponProblem.USED_UP
    assert coupon_problem(held, product, now, own_reservations=1) is None
    assert coupon_problem(held, product, now, check_uses=False) is None
    assert coupon_problem(coupon(creator_id=8), product, now) == CouponProblem.NOT_THIS_PRODUCT
    other = coupon(product_kind="course", product_id=4)
    assert coupon_problem(other, product, now) == CouponProblem.NOT_THIS_PRODUCT
    assert coupon_problem(coupon(product_kind="course", product_id=3), product, now) is None
    # A fixed amount applies only in its own currency; percent to Stars and cards alike.
    five_usd = coupon(kind="fixed", value=500, currency="USD")
    assert apply(five_usd, 1999, "USD") == 1499 and apply(five_usd, 500, "XTR") == 500
    assert apply(coupon(), 500, "XTR") == 450
