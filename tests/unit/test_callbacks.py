from __future__ import annotations

from bot.keyboards.callbacks import CourseCB, InterestCB, LangCB, MenuAction, MenuCB, PageCB
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
