"""Small helpers shared by handlers: showing a screen by editing the pressed message, and
the filters every router uses."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command as _AiogramCommand
from aiogram.filters import CommandStart as _AiogramCommandStart
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import get_i18n

from bot.models import User
from bot.text import clip_html

TELEGRAM_TEXT_LIMIT = 4096

ScreenT = TypeVar("ScreenT")


class Screens(Generic[ScreenT]):
    """Screens rendered once per key (a catalog snapshot's version among its parts), the
    oldest forgotten past `limit`: rendering keyboards of pydantic objects costs more
    than the rest of an update."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[Hashable, ScreenT] = OrderedDict()

    def get(self, key: Hashable, render: Callable[[], ScreenT]) -> ScreenT:
        screen = self._items.get(key)
        if screen is None:
            screen = self._items[key] = render()
            if len(self._items) > self.limit:
                self._items.popitem(last=False)
        return screen


def current_locale() -> str:
    return get_i18n().current_locale


def list_language(user: User | None) -> str | None:
    """The language whose courses lead this learner's lists: the one they read the bot
    in, or None when they chose "both languages" (lists keep their plain order)."""
    if user is not None and user.both_languages:
        return None
    return current_locale()


def clip(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    """Cut HTML to Telegram's limit, counted as Telegram counts, never inside a tag."""
    return clip_html(text, limit)


async def show(
    callback: CallbackQuery,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    note: str | None = None,
) -> None:
    """Replace the pressed message in place (back navigation edits, never spams).

    This answers the callback query, with `note` as its toast: Telegram takes one answer
    per query, so a caller that has something to say passes it here instead of answering
    again (a second answer is refused as "query is too old")."""
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
        await callback.answer(note)


async def is_private(event: Message | CallbackQuery) -> bool:
    """Private chats only. Async on purpose: aiogram runs sync filters in a thread."""
    message = event.message if isinstance(event, CallbackQuery) else event
    return message is not None and message.chat.type == "private"


async def has_text(message: Message) -> bool:
    """Messages with text. Async for the same reason as is_private."""
    return bool(message.text)


class _QuickReject(_AiogramCommand):
    """Rejects what is not this command before aiogram's parser sees it.

    A plain message passes some forty command filters on its way to search, and aiogram's
    parser rejects each one by raising and catching an exception. Comparing the first
    word first costs a fraction of that; whatever passes is still parsed by aiogram.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = [c for c in self.commands if isinstance(c, str)]
        # With a regexp among the commands only aiogram's parser can tell.
        self._names = None if len(names) < len(self.commands) else frozenset(names)

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        if not isinstance(message, Message):
            return False
        text = message.text or message.caption
        if not text or text[0] not in self.prefix:
            return False
        if self._names is not None:
            words = text[1:].split(maxsplit=1)
            name = words[0].partition("@")[0] if words else ""
            if (name.casefold() if self.ignore_case else name) not in self._names:
                return False
        return await super().__call__(message, bot)


class Command(_QuickReject):
    """aiogram's Command filter, quicker to say no."""


class CommandStart(_QuickReject, _AiogramCommandStart):
    """aiogram's CommandStart filter (deep links), quicker to say no."""
