"""Coupon and fee arithmetic in integer minor units. Pure functions; no floats.

Every amount is an integer count of the currency's smallest unit (cents, yen, Stars),
so rounding happens once, here, half up to a whole minor unit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

BPS_DENOMINATOR = 10_000


def percent_to_bps(percent: Decimal | int | str) -> int:
    """10 → 1000 basis points; clamped to 0..100 %."""
    bps = (Decimal(str(percent)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(0, min(BPS_DENOMINATOR, int(bps)))


def _round_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def discounted(amount: int, kind: str, value: int) -> int:
    """The price after a coupon: never negative, never above the price.

    kind "percent": value is 0..100 (clamped); the discount is rounded half up.
    kind "fixed": value is an amount in the same minor units as `amount`.
    """
    if amount <= 0:
        return 0
    if kind == "percent":
        pct = max(0, min(100, value))
        discount = _round_div(amount * pct, 100)
    elif kind == "fixed":
        discount = max(0, value)
    else:
        raise ValueError(f"unknown coupon kind {kind!r}")
    return max(0, min(amount, amount - discount))


def split_fee(amount: int, fee_bps: int) -> tuple[int, int]:
    """(platform fee, creator net) of a non-negative amount; fee + net == amount."""
    if amount < 0:
        raise ValueError("split a sale, not a refund; negate the sale's split instead")
    bps = max(0, min(BPS_DENOMINATOR, fee_bps))
    fee = _round_div(amount * bps, BPS_DENOMINATOR)
    return fee, amount - fee
