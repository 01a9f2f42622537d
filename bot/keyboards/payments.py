"""Keyboards of buying: the choice of payment method, links and the receipt."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.keyboards.callbacks import CourseCB, MenuAction, MenuCB
from bot.money import format_money


class PayCB(CallbackData, prefix="pay"):
    """Pay for a product by a method, with an optional coupon (0 = none)."""

    k: str  # product kind: "course" | "plan" | "bundle"
    id: int
    m: str  # "stars" | "card" | "web"
    cp: int = 0
    t: str = ""  # the coupon's tag (bot.payments.coupons.coupon_tag)


class LinkCB(CallbackData, prefix="plk"):
    """An invoice link (createInvoiceLink) instead of an invoice message."""

    k: str
    id: int
    m: str
    cp: int = 0
    t: str = ""


class PromoCB(CallbackData, prefix="pcode"):
    k: str
    id: int


def method_label(method: str, amount: int, currency: str, locale: str) -> str:
    price = format_money(amount, currency, locale)
    if method == "stars":
        return _("⭐ Telegram Stars — {price}").format(price=price)
    if method == "card":
        return _("💳 Card — {price}").format(price=price)
    return _("🌐 Pay on a web page — {price}").format(price=price)


def methods_keyboard(
    kind: str,
    product_id: int,
    quotes: list[tuple[str, int, str]],
    coupon_id: int,
    locale: str,
    coupon_tag: str = "",
) -> InlineKeyboardMarkup:
    """quotes: (method, amount, currency) per method offered."""
    rows: list[list[InlineKeyboardButton]] = []
    for method, amount, currency in quotes:
        data = PayCB(k=kind, id=product_id, m=method, cp=coupon_id, t=coupon_tag).pack()
        rows.append(
            [
                InlineKeyboardButton(
                    text=method_label(method, amount, currency, locale), callback_data=data
                )
            ]
        )
    telegram_methods = [q[0] for q in quotes if q[0] in ("stars", "card")]
    if telegram_methods:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🔗 Get a payment link"),
                    callback_data=LinkCB(
                        k=kind, id=product_id, m=telegram_methods[0], cp=coupon_id, t=coupon_tag
                    ).pack(),
                )
            ]
        )
    if not coupon_id and kind != "bundle":  # a bundle takes no promo codes
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🏷 I have a promo code"),
                    callback_data=PromoCB(k=kind, id=product_id).pack(),
                )
            ]
        )
    if kind == "course":
        rows.append(
            [InlineKeyboardButton(text=_("◀ Back"), callback_data=CourseCB(id=product_id).pack())]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def url_keyboard(text: str, url: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=text, url=url)]])


def receipt_keyboard(
    suggestions: list[list[InlineKeyboardButton]] | None = None,
) -> InlineKeyboardMarkup:
    library = InlineKeyboardButton(
        text=_("🎒 My library"), callback_data=MenuCB(action=MenuAction.LIBRARY).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[library], *(suggestions or [])])
