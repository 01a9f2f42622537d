"""/mydata (everything Lyceum holds about you, as a JSON file) and /deleteme (erase it,
after a confirmation that says what ends and what stays). The rules are in
bot.services.privacy; this module only asks, answers and sends."""

from __future__ import annotations

import logging
from collections.abc import Callable
from html import escape

from aiogram import Bot, Router
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.common import Command, show
from bot.keyboards.callbacks import EraseCB
from bot.keyboards.privacy import erase_keyboard
from bot.models import User
from bot.scheduler.clock import Clock
from bot.services import privacy
from bot.services.events import EventBuffer
from bot.text import shorten

router = Router(name=__name__)
log = logging.getLogger(__name__)

# A confirmation older than this is stale: what ends may have changed since it was shown.
CONFIRM_SECONDS = 10 * 60


def _private_only(command: str) -> str:
    return _("Your data is personal: send /{command} to me in a private chat.").format(
        command=command
    )


def money_note() -> str:
    return _(
        "Payment records (orders, payments, refunds, the sellers' ledger) stay, without "
        "your name or contact details: money records must be kept for accounting. They "
        "stay linked to your Telegram account number, which refunds need."
    )


def preview_text(loss: privacy.Loss) -> str:
    lines = [
        _("<b>Erase your data?</b>"),
        "",
        _(
            "Your profile (name, username, language, interests, time zone), your learning "
            "progress, activity history, reviews, follows, shared links and reminders will "
            "be deleted. This cannot be undone."
        ),
    ]
    if loss.courses or loss.plans:
        lines += ["", _("<b>Your access to these ends now, with no refund:</b>")]
        lines += [f"• {escape(shorten(title, 60))}" for title in loss.courses + loss.plans]
        if loss.plans:
            lines.append(_("You will be removed from the plans' groups and channels."))
    lines += ["", money_note()]
    return "\n".join(lines)


@router.message(Command("mydata"))
async def cmd_mydata(message: Message, session: AsyncSession, user: User, clock: Clock) -> None:
    if message.chat.type != "private":
        await message.answer(_private_only("mydata"))
        return
    document = await privacy.export(session, user.id, clock.now())
    await message.answer(
        _(
            "Here is everything Lyceum holds about you, as a JSON file: your profile, "
            "purchases, access, progress, reviews, links and activity. /deleteme erases it."
        )
    )
    await message.answer_document(
        BufferedInputFile(privacy.export_bytes(document), filename=f"lyceum-data-{user.id}.json")
    )


@router.message(Command("deleteme"))
async def cmd_deleteme(message: Message, session: AsyncSession, user: User, clock: Clock) -> None:
    if message.chat.type != "private":
        await message.answer(_private_only("deleteme"))
        return
    if await privacy.is_creator(session, user.id):
        await message.answer(creator_text())
        return
    now = clock.now()
    loss = await privacy.what_ends(session, user.id, now)
    keyboard = erase_keyboard(user.id, int(now.timestamp()), privacy.confirmation_stamp(user))
    await message.answer(preview_text(loss), reply_markup=keyboard)


def creator_text() -> str:
    return _(
        "Your account sells courses: learners' access and your payouts depend on it, so it "
        "cannot be erased from here. Write to the platform owner to close it."
    )


def refusal(data: EraseCB, user: User, now: float) -> str | None:
    """Why this press erases nothing, or None when it may."""
    if data.u != user.id:
        return _("This button is not yours.")
    if not data.ok:
        return None
    if not 0 <= now - data.at <= CONFIRM_SECONDS:
        return _("This confirmation has expired. Send /deleteme again.")
    if data.s != privacy.confirmation_stamp(user):
        return _("This confirmation was already used. Nothing more was erased.")
    return None


@router.callback_query(EraseCB.filter())
async def on_erase(
    callback: CallbackQuery,
    callback_data: EraseCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
    bot: Bot,
    events: EventBuffer,
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    refused = refusal(callback_data, user, now.timestamp())
    if refused is not None:
        await callback.answer(refused, show_alert=True)
        return
    if not callback_data.ok:
        await show(callback, _("Nothing was erased."))
        return
    if await privacy.is_creator(session, user.id):
        await callback.answer(creator_text(), show_alert=True)
        return
    result = await privacy.erase(session, user.id, now)
    log.info("erased the personal data of a learner (%d accesses ended)", result.revoked)
    text = _("Your data is erased. Your access has ended.") + "\n\n" + money_note()

    async def tell() -> None:
        # After the commit: Telegram calls never sit inside the erasing transaction.
        events.forget(user.id)  # a view recorded a moment ago must not come back
        for charge in result.subscription_charges:
            try:
                await bot.edit_user_star_subscription(
                    user_id=user.id, telegram_payment_charge_id=charge, is_canceled=True
                )
            except Exception:
                log.warning("could not cancel a Stars subscription renewal", exc_info=True)
        await show(callback, text)

    after_commit.append(tell)
