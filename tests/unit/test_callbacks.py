from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.keyboards.callbacks import (
    BuyCB,
    CourseCB,
    InterestCB,
    LangCB,
    MenuAction,
    MenuCB,
    PageCB,
    SimilarCB,
    packed,
)
from bot.services.topics import TOPICS

TELEGRAM_LIMIT = 64


def test_packed_callback_data_fits_telegram_limit() -> None:
    biggest = [
        CourseCB(id=2**31 - 1, back=2**31 - 1).pack(),
        PageCB(page=2**31 - 1).pack(),
        LangCB(code="zh").pack(),
        *(InterestCB(key=t.key).pack() for t in TOPICS),
        *(MenuCB(action=a).pack() for a in MenuAction),
    ]
    for data in biggest:
        assert len(data.encode()) <= TELEGRAM_LIMIT, data


@given(
    number=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    back=st.integers(min_value=-1, max_value=2**31 - 1),
)
def test_packed_is_what_aiogram_packs(number: int, back: int) -> None:
    assert (
        packed(CourseCB, id=number, back=back, src=7)
        == CourseCB(id=number, back=back, src=7).pack()
    )
    assert packed(PageCB, page=number) == PageCB(page=number).pack()
    assert packed(BuyCB, id=number) == BuyCB(id=number).pack()
    assert packed(SimilarCB, id=number) == SimilarCB(id=number).pack()
    assert CourseCB.unpack(packed(CourseCB, id=number, back=back, src=0)) == CourseCB(
        id=number, back=back
    )


def test_packed_needs_every_field_and_keeps_the_limit() -> None:
    with pytest.raises(KeyError):
        packed(CourseCB, id=1)  # `back` has a default in the model, not here
    with pytest.raises(ValueError):
        packed(CourseCB, id=10**40, back=10**20, src=0)
