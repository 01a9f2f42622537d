"""The /deleteme confirmation."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.keyboards.callbacks import EraseCB


def erase_keyboard(user_id: int, asked_at: int, stamp: str) -> InlineKeyboardMarkup:
    def cb(ok: bool) -> str:
        return EraseCB(u=user_id, at=asked_at, s=stamp, ok=ok).pack()

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("🗑 Yes, erase my data"), callback_data=cb(True))],
            [InlineKeyboardButton(text=_("Keep my data"), callback_data=cb(False))],
        ]
    )
