"""The production Sender: aiogram's Bot, with Telegram's errors mapped to ours.

The scheduler knows only the `Sender` protocol (bot.scheduler.sender); app.py builds this.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.scheduler.errors import ChatNotFound, Rejected, RetryAfter, Transient, Unreachable
from bot.scheduler.sender import Button, Outgoing
from bot.text import clip_html

# A caption is limited to 1024 characters, a text to 4096.
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096


def _clip(text: str | None, limit: int) -> str | None:
    # The last guard: what was checked at authoring fits; anything else is cut where
    # Telegram can still parse it (never inside a tag), not refused whole.
    return None if text is None else clip_html(text, limit)


def _markup(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.text, callback_data=b.data) for b in row]
            for row in message.buttons
        ]
    )


def outgoing(text: str, markup: InlineKeyboardMarkup | None = None) -> Outgoing:
    """A handler's text and keyboard as the scheduler's plain message (callback buttons
    only: that is all Outgoing carries)."""
    rows: list[tuple[Button, ...]] = []
    for row in markup.inline_keyboard if markup is not None else ():
        buttons = tuple(Button(b.text, b.callback_data) for b in row if b.callback_data)
        if buttons:
            rows.append(buttons)
    return Outgoing(text=text, buttons=tuple(rows))


class TelegramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, message: Outgoing) -> int:
        common: dict[str, Any] = {
            "chat_id": chat_id,
            "protect_content": message.protect_content,
            "reply_markup": _markup(message),
        }
        if message.paid_broadcast:
            common["allow_paid_broadcast"] = True
        caption = _clip(message.caption, CAPTION_LIMIT)
        try:
            if message.copy_from is not None and message.copy_id is not None:
                copied = await self.bot.copy_message(
                    from_chat_id=message.copy_from, message_id=message.copy_id, **common
                )
                return copied.message_id
            if message.kind == "photo":
                sent = await self.bot.send_photo(
                    photo=message.file_id or "", caption=caption, **common
                )
            elif message.kind == "video":
                sent = await self.bot.send_video(
                    video=message.file_id or "", caption=caption, **common
                )
            elif message.kind == "document":
                sent = await self.bot.send_document(
                    document=message.file_id or "", caption=caption, **common
                )
            elif message.kind == "voice":
                sent = await self.bot.send_voice(
                    voice=message.file_id or "", caption=caption, **common
                )
            else:
                sent = await self.bot.send_message(
                    text=_clip(message.text, TEXT_LIMIT) or "…", **common
                )
        except Exception as exc:
            raise map_error(exc) from exc
        return sent.message_id

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
    ) -> None:
        try:
            await self.bot.edit_message_text(
                text=_clip(text, TEXT_LIMIT) or "…",
                chat_id=chat_id,
                message_id=message_id,
                reply_markup=_markup(Outgoing(buttons=buttons)),
            )
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message:
                return
            raise map_error(exc) from exc
        except Exception as exc:
            raise map_error(exc) from exc


def map_error(exc: BaseException) -> BaseException:
    """aiogram's exception → ours. Anything unknown is passed through unchanged."""
    if isinstance(exc, TelegramRetryAfter):
        return RetryAfter(exc.retry_after, exc.message)
    if isinstance(exc, TelegramForbiddenError):
        return Unreachable(exc.message)
    if isinstance(exc, TelegramBadRequest | TelegramNotFound):
        if "chat not found" in exc.message.lower() or "user not found" in exc.message.lower():
            return ChatNotFound(exc.message)
        return Rejected(exc.message)
    if isinstance(exc, TelegramNetworkError | TelegramServerError | TimeoutError | OSError):
        return Transient(str(exc))
    return exc
