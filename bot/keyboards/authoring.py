"""Buttons of the creator's flows."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _


class NewCourseCB(CallbackData, prefix="nc"):
    # lang:<code> while asking the language; publish / draft at the end.
    action: str
    value: str = ""


def language_choice() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text="English", callback_data=NewCourseCB(action="lang", value="en").pack()
                ),
                InlineKeyboardButton(
                    text="中文", callback_data=NewCourseCB(action="lang", value="zh").pack()
                ),
            ]
        ]
    )


def publish_choice() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("🚀 Publish"), callback_data=NewCourseCB(action="publish").pack()
                ),
                InlineKeyboardButton(
                    text=_("📝 Keep as draft"), callback_data=NewCourseCB(action="draft").pack()
                ),
            ]
        ]
    )
