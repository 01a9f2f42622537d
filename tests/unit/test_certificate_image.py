"""The certificate renders headless; a Chinese name, course and creator lose no glyph."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace

import pytest
from PIL import Image

from bot.analytics import certificate_image
from bot.analytics.certificate_image import CertificateFacts, CertificateTexts, render_certificate

FACTS = CertificateFacts(
    learner="李小龙 Bruce",
    course="Python 入门（零基础）",
    creator="王老师",
    date="2026-12-03",
    serial="ABCDEFGH23",
    link="https://t.me/lyceum_bot?start=v_ABCDEFGH23",
)
ZH = CertificateTexts(
    heading="结业证书",
    awarded="授予",
    for_course="以表彰其完成课程",
    by_creator="{creator}",
    issued="颁发日期 {date} · 编号 {serial}",
    verify="验证：{link}",
)


def _render(facts: CertificateFacts, texts: CertificateTexts | None) -> tuple[bytes, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render_certificate(facts, texts)
    return png, [str(w.message) for w in caught]


@pytest.mark.parametrize("texts", [None, ZH], ids=["en", "zh"])
def test_chinese_names_render_with_every_glyph(texts: CertificateTexts | None) -> None:
    png, problems = _render(FACTS, texts)
    assert not [p for p in problems if "missing from" in p], problems
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and (image.width, image.height) == (1200, 850)


def test_the_glyph_check_would_catch_boxes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certificate_image, "FONT_FAMILIES", ["DejaVu Sans"])
    _png, problems = _render(FACTS, None)
    assert any("missing from" in p for p in problems)


def test_long_titles_are_cut_not_overflowing() -> None:
    long = replace(FACTS, course="很长的课程名" * 30, learner="名" * 100)
    png, problems = _render(long, None)
    assert png.startswith(b"\x89PNG") and not [p for p in problems if "missing from" in p]
