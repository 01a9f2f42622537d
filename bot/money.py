"""Money in minor units. Pure functions; no floats touch an amount."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision

STARS = "XTR"


def minor_digits(currency: str) -> int:
    """Digits after the decimal point: 2 for USD, 0 for JPY, 3 for KWD; Stars have none."""
    if currency.upper() == STARS:
        return 0
    return int(get_currency_precision(currency.upper()))


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-minor_digits(currency))


# The bot's languages and the Babel locale each formats money in.
BABEL_LOCALES = {"en": "en_US", "zh": "zh_Hans_CN"}
LOCALES = tuple(BABEL_LOCALES)


@lru_cache(maxsize=1 << 16)
def format_money(amount_minor: int, currency: str, locale: str = "en") -> str:
    # Cached: Babel's formatting costs ~10 µs and catalog pages show a dozen prices. Big
    # enough for every price of a large catalog in both languages (a few MB at most).
    if currency.upper() == STARS:
        return f"⭐ {amount_minor}"
    babel_locale = BABEL_LOCALES.get(locale, "en_US")
    return str(
        format_currency(to_decimal(amount_minor, currency), currency.upper(), locale=babel_locale)
    )


def warm_prices(prices: list[tuple[int, str]]) -> None:
    """Format these (amount, currency) pairs once in every language, filling the cache."""
    for amount, currency in prices:
        for locale in LOCALES:
            format_money(amount, currency, locale)
