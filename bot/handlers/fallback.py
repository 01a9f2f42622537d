"""Last router: whatever no feature handled gets a polite answer and changes nothing."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.handlers.common import is_private

router = Router(name=__name__)


@router.message(is_private)
async def on_unhandled_message(message: Message) -> None:
    if message.text and message.text.startswith("/"):
        await message.answer(_("I don't know that command. /help lists what I can do."))
    else:
        await message.answer(
            _("I understand text and buttons. Type what you want to learn, or use /help.")
        )


@router.callback_query()
async def on_stale_button(callback: CallbackQuery) -> None:
    # Forged, outdated or oversized callback data lands here: say so, change nothing.
    await callback.answer(
        _("This button is no longer active. Please open the menu again with /start."),
        show_alert=True,
    )
