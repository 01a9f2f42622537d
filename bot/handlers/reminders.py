"""Growth in chat: the creator's /remind (the code abandoned-checkout reminders offer)
and the learner's one button that turns reminders and offers off (and back on)."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.config import Settings
from bot.growth import payable, reminders
from bot.handlers.common import Command, is_private
from bot.keyboards.growth import GrowthCB, reminders_back_keyboard
from bot.models import Creator, ProductKind, User
from bot.payments import coupons as coupons_service
from bot.services import authoring
from bot.services import groups as groups_service

router = Router(name=__name__)
router.message.filter(is_private)


def usage() -> str:
    return _(
        "Usage: /remind coupon <i>CODE</i> [course=<i>ID</i> | plan=<i>ID</i>] — the code "
        "abandoned-checkout reminders offer; /remind coupon off [course=<i>ID</i> | "
        "plan=<i>ID</i>] removes it; /remind shows what is set."
    )


async def _scope(
    session: AsyncSession, creator: Creator, words: list[str]
) -> tuple[str, int] | str | None:
    """("", 0) for every product, (kind, id) for one of the creator's; None = bad
    syntax; "mine" = not their product."""
    if not words:
        return reminders.ALL, 0
    if len(words) > 1:
        return None
    key, sep, value = words[0].partition("=")
    number = parsing.record_id(value) if sep else None
    if number is None:
        return None
    if key.lower() == "course":
        own = await authoring.own_course(session, creator, number)
        return (ProductKind.COURSE, number) if own and own.creator_id == creator.id else "mine"
    if key.lower() == "plan":
        plan = await groups_service.owned_plan(session, creator, number)
        return (ProductKind.PLAN, number) if plan and plan.creator_id == creator.id else "mine"
    return None


def _scope_text(kind: str, product_id: int) -> str:
    if kind == ProductKind.COURSE:
        return _("course {id}").format(id=product_id)
    if kind == ProductKind.PLAN:
        return _("plan {id}").format(id=product_id)
    return _("all your courses and plans")


@router.message(Command("remind"))
async def cmd_remind(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
) -> None:
    creator = await authoring.creator_for(session, user, settings.admin_ids)
    if creator is None:
        await message.answer(
            _("Only creators can do this. Send /becomecreator to start selling courses.")
        )
        return
    words = (command.args or "").split()
    if not words:
        rows = await reminders.coupons_of(session, creator)
        text = _(
            "A learner who opens an invoice and does not pay gets one reminder after "
            "{hours} h, outside their quiet hours."
        ).format(hours=settings.abandoned_reminder_hours)
        for kind, product_id, code in rows:
            text += "\n" + _("{scope}: code {code}").format(
                scope=_scope_text(kind, product_id), code=escape(code)
            )
        await message.answer(text + "\n\n" + usage())
        return
    if words[0].lower() != "coupon" or len(words) < 2:
        await message.answer(usage())
        return
    scope = await _scope(session, creator, words[2:])
    if scope is None:
        await message.answer(usage())
        return
    if scope == "mine":
        await message.answer(_("No such course or plan among yours."))
        return
    assert isinstance(scope, tuple)
    kind, product_id = scope
    if words[1].lower() == "off":
        await reminders.set_coupon(session, creator, None, kind, product_id)
        await message.answer(
            _("Reminders for {scope} offer no code now.").format(
                scope=_scope_text(kind, product_id)
            )
        )
        return
    coupon = await coupons_service.find_code(session, words[1])
    # Only the creator's own code: another creator's would not apply to these products.
    if coupon is None or coupon.creator_id != creator.id:
        await message.answer(_("No such promo code among yours. /coupon list shows them."))
        return
    if coupon.product_kind is not None and (coupon.product_kind, coupon.product_id) != (
        kind,
        product_id,
    ):
        await message.answer(
            _("This code is for one product only: name it with course=ID or plan=ID.")
        )
        return
    await reminders.set_coupon(session, creator, coupon, kind, product_id)
    await message.answer(
        _("Reminders for {scope} now offer the code {code}.").format(
            scope=_scope_text(kind, product_id), code=escape(coupon.code)
        )
    )


@router.callback_query(GrowthCB.filter())
async def on_growth(
    callback: CallbackQuery, callback_data: GrowthCB, session: AsyncSession, user: User
) -> None:
    action = callback_data.a
    if action == "on":
        await reminders.set_reminders(session, user, True)
        await callback.answer(_("Reminders and offers are on again."), show_alert=True)
        return
    if action == "eon":
        await payable.set_notices(session, user, True)
        await callback.answer(_("Earnings messages are on again."), show_alert=True)
        return
    if action == "off":
        await reminders.set_reminders(session, user, False)
        text = _("Done: no more checkout reminders or offers from this bot.")
    elif action == "eoff":
        await payable.set_notices(session, user, False)
        text = _(
            "Done: no more messages when a commission becomes payable. "
            "/earnings still shows your balance."
        )
    else:  # forged or from an older version: change nothing
        await callback.answer(_("This button is no longer valid."), show_alert=True)
        return
    await callback.answer()
    if callback.message is not None:
        await callback.bot.send_message(  # type: ignore[union-attr]
            user.id, text, reply_markup=reminders_back_keyboard(action.removesuffix("off") + "on")
        )
