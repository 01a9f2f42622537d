"""Creators' and the admin's money commands: /refund, /coupon, /sales.

A creator acts on their own sales and coupons only; the platform admin (ADMIN_IDS, as
configured now) on everyone's.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from aiogram import Bot, Router
from aiogram.filters import CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.config import Settings
from bot.handlers.common import Command, current_locale, is_private
from bot.handlers.payments import gateways, refunded_text, tell_learner
from bot.models import Coupon, CouponKind, User
from bot.money import format_money
from bot.payments import coupons as coupons_service
from bot.payments.coupons import CouponSpecError
from bot.payments.ledger import sales_summary
from bot.payments.refunds import RefundStatus, find_payment, refund_payment
from bot.scheduler.clock import Clock
from bot.services.users import creator_for, get_creator, is_owner

router = Router(name=__name__)
router.message.filter(is_private)


@dataclass(frozen=True, slots=True)
class Actor:
    # None for the admin: every creator's sales.
    creator_id: int | None
    is_admin: bool


async def _actor(session: AsyncSession, user: User, settings: Settings) -> Actor | None:
    # Rights are checked on every call against the running ADMIN_IDS, never a stored role:
    # someone removed from ADMIN_IDS is a plain creator (or nobody) from the next command.
    if is_owner(user.id, settings.admin_ids):
        return Actor(None, True)
    creator = await creator_for(session, user, settings.admin_ids)
    if creator is None:
        return None
    return Actor(creator.id, False)


def not_a_creator() -> str:
    return _("This command is for course creators.")


# --- /refund -------------------------------------------------------------------------------


@router.message(Command("refund"))
async def cmd_refund(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    i18n: I18n,
    clock: Clock,
) -> None:
    actor = await _actor(session, user, settings)
    if actor is None:
        await message.answer(not_a_creator())
        return
    ref = (command.args or "").strip()
    if not ref:
        await message.answer(_("Usage: /refund <i>order reference or payment id</i>"))
        return
    payment = await find_payment(session, ref)
    if payment is None:
        await message.answer(_("No payment found for «{ref}».").format(ref=escape(ref[:64])))
        return
    result = await refund_payment(
        session,
        payment,
        gateways(bot, settings),
        settings,
        actor_creator_id=actor.creator_id,
        now=clock.now(),
    )
    locale = current_locale()
    amount = format_money(result.amount, result.currency, locale)
    if result.status in (RefundStatus.NOT_FOUND, RefundStatus.FORBIDDEN):
        # The same answer for "not yours" as for "not there": no peeking at others' sales.
        await message.answer(_("No payment found for «{ref}».").format(ref=escape(ref[:64])))
        return
    if result.status == RefundStatus.ALREADY:
        await message.answer(
            _("Payment {id} ({amount}) was already refunded.").format(
                id=result.payment_id, amount=amount
            )
        )
        return
    if result.status == RefundStatus.FAILED:
        kind, _sep, detail = result.detail.partition(":")
        if kind == "not_configured":
            text = _(
                "This payment cannot be refunded from here: its provider is not configured "
                "(Stripe needs STRIPE_SECRET_KEY)."
            )
        else:
            text = _("The payment provider refused the refund: {detail}").format(
                detail=escape(detail[:300])
            )
        await message.answer(text + "\n" + _("Nothing was changed."))
        return
    lines = [
        _("↩️ Refunded payment {id}: {amount} for «{title}».").format(
            id=result.payment_id, amount=amount, title=escape(result.title)
        )
    ]
    if result.status == RefundStatus.SYNCED:
        lines.append(
            _(
                "The provider says it had already been refunded (CHARGE_ALREADY_REFUNDED); "
                "our records now agree."
            )
        )
    if result.revoked:
        lines.append(_("The learner's access was revoked."))
    await message.answer("\n".join(lines))
    if result.user_id:
        await tell_learner(
            bot,
            session,
            i18n,
            settings,
            result.user_id,
            lambda loc: (refunded_text(result, loc), None),
        )


# --- /sales --------------------------------------------------------------------------------


@router.message(Command("sales"))
async def cmd_sales(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
) -> None:
    actor = await _actor(session, user, settings)
    if actor is None:
        await message.answer(not_a_creator())
        return
    creator_id = actor.creator_id
    arg = (command.args or "").strip()
    if actor.is_admin and (asked := parsing.record_id(arg)) is not None:
        creator_id = asked
    totals = await sales_summary(session, creator_id)
    if not totals:
        await message.answer(_("No sales yet."))
        return
    locale = current_locale()
    title = _("💰 Sales (platform)") if creator_id is None else _("💰 Your sales")
    lines = [f"<b>{title}</b>", ""]
    for t in totals:
        lines.append(
            _("{currency}: {sales}, {refunds} — gross {gross}, fee {fee}, net {net}").format(
                currency=t.currency,
                sales=ngettext("{n} sale", "{n} sales", t.sales).format(n=t.sales),
                refunds=ngettext("{n} refund", "{n} refunds", t.refunds).format(n=t.refunds),
                gross=format_money(t.gross_minor, t.currency, locale),
                fee=format_money(t.fee_minor, t.currency, locale),
                net=format_money(t.net_minor, t.currency, locale),
            )
        )
    await message.answer("\n".join(lines))


# --- /coupon -------------------------------------------------------------------------------


def coupon_usage() -> str:
    return _(
        "<b>Promo codes</b>\n"
        "/coupon add CODE 20% — 20 % off all your courses\n"
        "/coupon add CODE 5.00USD course=12 uses=100 days=30 — a fixed discount on one "
        "course, at most 100 uses, for 30 days (Stars: 50XTR)\n"
        "/coupon list — your codes\n"
        "/coupon off CODE — stop a code"
    )


def coupon_error(code: str) -> str:
    texts = {
        "code": _("A code is 3–32 letters, digits, - or _."),
        "percent": _("A percentage must be between 1 and 100."),
        "fixed": _("A fixed discount needs a positive amount and a currency, e.g. 5USD."),
        "value": _("Write the discount as 20% or as an amount with a currency, e.g. 5.00USD."),
        "taken": _("That code is already taken."),
        "product": _("No such course or plan of yours."),
        "days": _("days=N: from 1 to {max} days.").format(max=parsing.MAX_DAYS),
        "uses": _("uses=N: from 1 to {max}.").format(max=f"{parsing.MAX_COUNT:,}"),
        "amount": _("A fixed discount is at most {max} in its currency.").format(
            max=f"{parsing.MAX_PRICE_MAJOR:,}"
        ),
    }
    return texts.get(code, coupon_usage())


def coupon_line(coupon: Coupon, locale: str) -> str:
    if coupon.kind == CouponKind.PERCENT:
        value = f"{coupon.value}%"
    else:
        value = format_money(coupon.value, coupon.currency or "USD", locale)
    scope = (
        f"{coupon.product_kind} {coupon.product_id}" if coupon.product_kind else _("all products")
    )
    uses = f"{coupon.used_count}/{coupon.max_uses}" if coupon.max_uses else str(coupon.used_count)
    if coupon.reserved_count:
        # Held by open invoices: counted against the limit until paid or expired.
        uses += " " + _("(+{count} reserved)").format(count=coupon.reserved_count)
    state = "" if coupon.active else " " + _("(off)")
    until = (
        " " + _("until {date}").format(date=coupon.expires_at.strftime("%Y-%m-%d"))
        if coupon.expires_at
        else ""
    )
    return f"<code>{escape(coupon.code)}</code> — {value}, {scope}, {uses}{until}{state}"


@router.message(Command("coupon"))
async def cmd_coupon(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    actor = await _actor(session, user, settings)
    if actor is None:
        await message.answer(not_a_creator())
        return
    args = (command.args or "").split()
    sub = args[0].lower() if args else ""
    locale = current_locale()
    if sub == "list":
        items = await coupons_service.list_coupons(session, actor.creator_id)
        if not items:
            await message.answer(_("No promo codes yet."))
            return
        await message.answer("\n".join(coupon_line(c, locale) for c in items[-50:]))
        return
    if sub == "off" and len(args) == 2:
        if await coupons_service.deactivate(session, args[1], actor.creator_id):
            await message.answer(_("Promo code {code} is off.").format(code=escape(args[1])))
        else:
            await message.answer(_("No such promo code of yours."))
        return
    if sub != "add":
        await message.answer(coupon_usage())
        return
    try:
        spec, creator_arg = coupons_service.parse_spec(args[1:])
        creator_id = actor.creator_id
        if actor.is_admin:
            own = await get_creator(session, user.id)
            creator_id = creator_arg or (own.id if own else None)
            if creator_id is None:
                raise CouponSpecError("usage")
        assert creator_id is not None
        # days=N counts from the bot's clock, as redeeming the code does.
        coupon = await coupons_service.create_coupon(session, creator_id, spec, clock.now())
    except CouponSpecError as exc:
        await message.answer(coupon_error(str(exc)))
        return
    await message.answer(_("Promo code created: {line}").format(line=coupon_line(coupon, locale)))
