"""/help, /terms and /paysupport (Telegram requires the last of bots that take payments)."""

from __future__ import annotations

import logging
from html import escape

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers import commands
from bot.handlers.common import Command, show
from bot.keyboards.callbacks import MenuAction, MenuCB
from bot.keyboards.menus import only_home
from bot.keyboards.support import contact_keyboard
from bot.models import OrderStatus, User
from bot.services import support
from bot.services.support import Purchase
from bot.text import shorten

router = Router(name=__name__)
log = logging.getLogger(__name__)


def terms_text() -> str:
    return _(
        "<b>Terms of sale</b>\n\n"
        "Courses and memberships are digital goods sold by their creators through Lyceum. "
        "Payment gives you access for the period shown on the course or plan; lessons are "
        "delivered in this chat. Creators are responsible for their content. The platform keeps "
        "a fee from each sale. Refunds are described in /paysupport."
    )


def paysupport_text() -> str:
    return _(
        "<b>Payment support</b>\n\n"
        "If a payment went wrong, or you want a refund, write to the creator of the course "
        "and quote the order number from your receipt. Refunds go back the way you paid: "
        "Telegram Stars to your Stars balance at once, card payments to your card within "
        "5–10 days. Once refunded, access to the course or group ends. We never charge twice "
        "for the same order: if you did pay twice, the second payment is refunded "
        "automatically and we tell you so."
    )


@router.message(Command("help"))
async def cmd_help(message: Message) -> None:
    *pages, last = commands.learner_help()
    for page in pages:
        await message.answer(page)
    await message.answer(last, reply_markup=only_home())


@router.callback_query(MenuCB.filter(F.action == MenuAction.HELP))
async def on_help(callback: CallbackQuery) -> None:
    first, *more = commands.learner_help()
    await show(callback, first, None if more else only_home())
    if more and callback.message is not None:
        for n, page in enumerate(more, start=1):
            markup = only_home() if n == len(more) else None
            await callback.message.answer(page, reply_markup=markup)  # type: ignore[union-attr]


@router.message(Command("terms"))
async def cmd_terms(message: Message) -> None:
    await message.answer(terms_text())


def purchases_text(purchases: list[Purchase]) -> str:
    lines = ["", _("<b>Your recent purchases</b>")]
    for p in purchases:
        when = p.paid_at.strftime("%Y-%m-%d") if p.paid_at else "—"
        line = _("• «{title}» from {creator}, {date}, order <code>{ref}</code>").format(
            title=escape(shorten(p.title, 60)),
            creator=escape(p.creator_name),
            date=when,
            ref=escape(p.order_ref),
        )
        if p.status == OrderStatus.REFUNDED:
            line += " " + _("(refunded)")
        lines.append(line)
    lines += ["", _("Write to the creator with a button below and quote the order.")]
    return "\n".join(lines)


@router.message(Command("paysupport"))
async def cmd_paysupport(message: Message, session: AsyncSession, user: User) -> None:
    # What someone bought is nobody else's business: purchases only in a private chat.
    private = message.chat.type == "private"
    purchases = await support.recent_purchases(session, user.id) if private else []
    purchases = [p for p in purchases if p.creator_user_id != user.id]
    if not purchases:
        await message.answer(paysupport_text())
        return
    text = paysupport_text() + "\n" + purchases_text(purchases)
    try:
        await message.answer(text, reply_markup=contact_keyboard(purchases))
    except TelegramBadRequest:
        # A tg://user?id= button is refused when the creator's privacy settings forbid
        # it: keep the public t.me buttons and the names, which the learner can look up.
        log.info("paysupport: a creator link was refused; sending public links only")
        await message.answer(text, reply_markup=contact_keyboard(purchases, public_links_only=True))
