"""The /paysupport keyboard: a button per creator that opens a chat with them."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.services.support import Purchase
from bot.text import shorten


def creator_url(purchase: Purchase) -> str:
    # t.me works for everyone; tg://user?id= only when the creator's privacy settings
    # allow it (Telegram refuses the whole message otherwise: see cmd_paysupport).
    if purchase.creator_username:
        return f"https://t.me/{purchase.creator_username}"
    return f"tg://user?id={purchase.creator_user_id}"


def contact_keyboard(
    purchases: list[Purchase], *, public_links_only: bool = False
) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    seen: set[int] = set()
    for purchase in purchases:
        url = creator_url(purchase)
        if purchase.creator_user_id in seen or (public_links_only and url.startswith("tg:")):
            continue
        seen.add(purchase.creator_user_id)
        label = _("✉️ Write to {creator}").format(creator=shorten(purchase.creator_name, 40))
        rows.append([InlineKeyboardButton(text=label, url=url)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
