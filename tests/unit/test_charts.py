"""The chart renders headless, Chinese included: no glyph falls back to a box."""

from __future__ import annotations

import io
import warnings
from datetime import date, timedelta

import pytest
from PIL import Image

from bot.analytics import charts
from bot.analytics.charts import ChartTexts, render_chart

DAILY = [
    (date(2026, 11, 1) + timedelta(days=i), {"USD": (i * 731) % 5000, "XTR": (i * 97) % 400})
    for i in range(30)
]
FUNNEL = [("查看课程", 120), ("点击购买", 40), ("发票", 30), ("已付款", 12)]
ZH = ChartTexts(
    revenue="每日收入（{currency}）",
    funnel="转化漏斗",
    no_revenue="本期无收入",
    of_previous="上一步的 {percent}",
)


def _render(*args: object, **kwargs: object) -> tuple[bytes, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_chart(*args, **kwargs)  # type: ignore[arg-type]
    return png, [str(w.message) for w in caught]


def test_chinese_titles_render_with_every_glyph() -> None:
    png, problems = _render("销售图表 · Python 入门（零基础）· 30d", DAILY, FUNNEL, "zh", ZH)
    assert not [p for p in problems if "missing from" in p], problems
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.width >= 800 and image.height >= 600


def test_the_glyph_check_would_catch_boxes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the packaged CJK font the same picture warns: the check above is real.
    monkeypatch.setattr(charts, "FONT_FAMILIES", ["DejaVu Sans"])
    _png, problems = _render("销售图表", DAILY, FUNNEL, "zh", ZH)
    assert any("missing from" in p for p in problems)


def test_no_revenue_and_no_days_still_draw() -> None:
    for daily in ([], [(date(2026, 11, 1), {})]):
        png, problems = _render("Empty", daily, [("Views", 0), ("Paid", 0)], "en")
        assert png.startswith(b"\x89PNG") and not problems


def test_currencies_are_never_summed() -> None:
    # One panel per currency: three currencies make a taller picture than one.
    one, _p = _render("t", [(d, {"USD": a.get("USD", 0)}) for d, a in DAILY], FUNNEL)
    three, _p = _render("t", [(d, {**a, "JPY": 300}) for d, a in DAILY], FUNNEL)
    assert Image.open(io.BytesIO(three)).height > Image.open(io.BytesIO(one)).height
