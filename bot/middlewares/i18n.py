"""Locale per update: the user's choice, else Telegram's language_code, else the default.

aiogram's I18nMiddleware does the same through two generator-based context managers and
two dictionary writes on every update; on the catalog's hot path that bookkeeping costs
more than choosing the language. This one sets the two context variables directly (the
I18n that gettext() finds, and the locale) and resets them when the update is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TgUser
from aiogram.utils.i18n import I18n

from bot.i18n import pick_locale
from bot.models import User


class LocaleMiddleware(BaseMiddleware):
    def __init__(self, i18n: I18n) -> None:
        self.i18n = i18n

    def get_locale(self, data: dict[str, Any]) -> str:
        user: User | None = data.get("user")
        tg_user: TgUser | None = data.get("event_from_user")
        return pick_locale(
            user.language if user else None,
            tg_user.language_code if tg_user else None,
            self.i18n.default_locale,
        )

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        locale = self.get_locale(data)
        # gettext()/get_i18n() read I18n's own context variable (see PoI18n.context).
        current = I18n.set_current(self.i18n)  # type: ignore[arg-type]
        chosen = self.i18n.ctx_locale.set(locale)
        try:
            return await handler(event, data)
        finally:
            self.i18n.ctx_locale.reset(chosen)
            I18n.reset_current(current)
