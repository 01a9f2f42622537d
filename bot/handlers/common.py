"""Small helpers shared by handlers: showing a screen by editing the pressed message."""

from __future__ import annotations

import contextlib

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import get_i18n

TELEGRAM_TEXT_LIMIT = 4096


def current_locale() -> str:
    return get_i18n().current_locale


def clip(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def show(
    callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Replace the pressed message in place (back navigation edits, never spams)."""
    message = callback.message
    text = clip(text)
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as exc:
            # Pressing the same button twice leaves the text unchanged; that is fine.
            if "message is not modified" not in exc.message:
                await message.answer(text, reply_markup=markup)
    elif message is not None:
        # Too old to edit (InaccessibleMessage): send a fresh one instead.
        await callback.bot.send_message(message.chat.id, text, reply_markup=markup)  # type: ignore[union-attr]
    with contextlib.suppress(TelegramBadRequest):
        await callback.answer()


async def is_private(event: Message | CallbackQuery) -> bool:
    """Private chats only. Async on purpose: aiogram runs sync filters in a thread."""
    message = event.message if isinstance(event, CallbackQuery) else event
    return message is not None and message.chat.type == "private"


async def has_text(message: Message) -> bool:
    """Messages with text. Async for the same reason as is_private."""
    return bool(message.text)
