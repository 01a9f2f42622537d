from __future__ import annotations

from bot.money import format_money, minor_digits


def test_minor_units() -> None:
    assert minor_digits("USD") == 2
    assert minor_digits("JPY") == 0
    assert minor_digits("KWD") == 3
    assert minor_digits("XTR") == 0


def test_format() -> None:
    assert format_money(1999, "USD") == "$19.99"
    assert format_money(1500, "JPY") == "¥1,500"
    assert format_money(150, "XTR") == "⭐ 150"
    assert "19.99" in format_money(1999, "USD", "zh")
