"""Numbers and dates typed by people, read with the bounds every later step can compute.

A value that passes here must survive everything after it: a database column (PostgreSQL
`integer` ends at 2^31 - 1, `bigint` at 2^63 - 1), date arithmetic (`datetime` ends in
9999, and a time zone or a period added to a far date overflows) and a price in minor
units. Each bound is refused where it is typed, with the limit in the reply, instead of
being found when a learner pays (an OverflowError after the money was taken).

`str.isdigit()` is not enough: it accepts "²" and "٣", which `int()` refuses or reads.
Only ASCII digits are numbers here. No aiogram inside: services use this module too.
"""

from __future__ import annotations

import re
from datetime import datetime

MAX_ID = 2**31 - 1  # our own ids: integer primary keys
MAX_TELEGRAM_ID = 2**52  # Telegram: user and chat ids have at most 52 significant bits
MAX_DAYS = 3650  # periods, coupon lifetimes, release delays, preview days: ten years
MAX_COUNT = 1_000_000  # how many times a promo code may be used
MAX_YEAR = 2099  # fixed release dates: before 2100
MIN_YEAR = 2000
MAX_STARS = 100_000  # Stars price of a course or a plan
MAX_PRICE_MAJOR = 100_000  # a card price, in the currency's major units (100,000 USD)

_UNSIGNED = re.compile(r"[0-9]{1,19}")
_SIGNED = re.compile(r"-?[0-9]{1,19}")


def whole(text: str, low: int = 0, high: int = MAX_ID) -> int | None:
    """An integer of ASCII digits within [low, high]; None otherwise."""
    text = text.strip()
    if not _SIGNED.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def record_id(text: str) -> int | None:
    """One of our ids (course, lesson, plan, payment): 1 … 2^31 - 1."""
    text = text.strip().removeprefix("#")
    return whole(text, 1, MAX_ID) if _UNSIGNED.fullmatch(text) else None


def telegram_id(text: str) -> int | None:
    """A Telegram user id (positive) or chat id (negative for groups and channels)."""
    value = whole(text, -MAX_TELEGRAM_ID, MAX_TELEGRAM_ID)
    return None if value == 0 else value


def days(text: str, low: int = 1) -> int | None:
    return whole(text, low, MAX_DAYS)


def date_in_range(value: datetime) -> bool:
    return MIN_YEAR <= value.year <= MAX_YEAR
