"""Growth, the money half: affiliate programmes and links, commissions and payouts,
gifts. Thin: the rules live in bot.growth."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import parsing
from bot.config import Settings
from bot.growth import affiliates, gifts
from bot.growth.affiliates import LinkProblem, PayoutProblem, ProgramProblem
from bot.growth.gifts import ClaimOutcome
from bot.handlers.common import Command, current_locale, is_private
from bot.handlers.payments import (
    Notifier,
    _invoice_fields,
    commit_before_invoice,
    offer_problem_text,
)
from bot.i18n import pick_locale
from bot.keyboards.callbacks import GiftCB, GiftPayCB, ShareCB
from bot.keyboards.payments import method_label
from bot.models import PaymentMethod, ProductKind, User
from bot.money import format_money
from bot.payments.coupons import CouponSpecError, parse_value
from bot.payments.orders import Offer, OfferProblem, make_offer, open_order
from bot.scheduler.clock import Clock
from bot.scheduler.worker import Scheduler
from bot.services.users import creator_for

router = Router(name=__name__)
router.message.filter(is_private)

GIFT_METHODS = (PaymentMethod.STARS, PaymentMethod.CARD)


async def bot_link(bot: Bot, payload: str) -> str:
    """t.me/<bot>?start=<payload>; only the payload if Telegram cannot say who we are."""
    try:
        username = (await bot.me()).username
    except TelegramAPIError:
        username = None
    return f"https://t.me/{username}?start={payload}" if username else f"/start {payload}"


# --- creators: /affiliate, /affiliates, /payout ---------------------------------------------


def affiliate_usage() -> str:
    return _(
        "Usage: /affiliate <percent> [hold=<days>] [min=<amount>] [course=<id> | plan=<id>]\n"
        "e.g. /affiliate 20 hold=30 min=10.00USD — or /affiliate off [course=<id>]"
    )


def program_problem_text(problem: ProgramProblem) -> str:
    texts = {
        ProgramProblem.PERCENT: _(
            "The commission must be a whole percent from {low} to {high}. Nothing changed."
        ).format(low=affiliates.MIN_PERCENT, high=affiliates.MAX_PERCENT),
        ProgramProblem.HOLD: _(
            "The hold is a number of days from 0 to {high}. Nothing changed."
        ).format(high=parsing.MAX_DAYS),
        ProgramProblem.MIN: _(
            "The minimum payout is an amount with its currency, e.g. 10.00USD or 100XTR. "
            "Nothing changed."
        ),
        ProgramProblem.PRODUCT: _("That is not one of your courses or plans. Nothing changed."),
    }
    return texts.get(problem, affiliate_usage())


@router.message(Command("affiliate"))
async def cmd_affiliate(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
) -> None:
    creator = await creator_for(session, user, settings.admin_ids)
    if creator is None:
        await message.answer(_("This command is for course creators."))
        return
    spec = affiliates.parse_program((command.args or "").split())
    if isinstance(spec, ProgramProblem):
        await message.answer(escape(program_problem_text(spec)))
        return
    program = await affiliates.set_program(session, creator.id, spec)
    if isinstance(program, ProgramProblem):
        await message.answer(escape(program_problem_text(program)))
        return
    scope = (
        _("all your courses and plans")
        if program.product_kind is None
        else f"{program.product_kind} #{program.product_id}"
    )
    if not program.active:
        await message.answer(_("Affiliate programme off for {scope}.").format(scope=scope))
        return
    text = _(
        "🤝 Affiliate programme on for {scope}: {percent}% of each sale, "
        "payable {days} days after it."
    ).format(scope=scope, percent=program.percent, days=program.hold_days)
    if program.min_currency:
        text += "\n" + _("Smallest payout: {amount}.").format(
            amount=format_money(program.min_payout_minor, program.min_currency, current_locale())
        )
    text += "\n" + _("Learners get their link with /share or the 🔗 button on a card.")
    await message.answer(text)


@router.message(Command("affiliates"))
async def cmd_affiliates(
    message: Message, session: AsyncSession, user: User, settings: Settings, clock: Clock
) -> None:
    creator = await creator_for(session, user, settings.admin_ids)
    if creator is None:
        await message.answer(_("This command is for course creators."))
        return
    rows = await affiliates.report(session, creator.id, clock.now())
    if not rows:
        await message.answer(
            _("No affiliates yet. Turn the programme on with /affiliate <percent>.")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
        )
        return
    locale = current_locale()
    lines = [_("<b>🤝 Your affiliates</b>"), ""]
    for row in rows[:40]:
        lines.append(
            _(
                "<b>{name}</b> (<code>{id}</code>): {clicks} clicks, {starts} starts, "
                "{buyers} buyers"
            ).format(
                name=escape(row.name),
                id=row.affiliate_id,
                clicks=row.clicks,
                starts=row.starts,
                buyers=row.buyers,
            )
        )
        for b in row.money:
            lines.append(
                "  "
                + _(
                    "{currency}: revenue {revenue} · pending {pending} · payable {payable} "
                    "· paid {paid}"
                ).format(
                    currency=b.currency,
                    revenue=format_money(b.revenue, b.currency, locale),
                    pending=format_money(b.pending, b.currency, locale),
                    payable=format_money(b.payable, b.currency, locale),
                    paid=format_money(b.paid, b.currency, locale),
                )
            )
    lines += ["", escape(_("Record a payout: /payout <affiliate id> <amount>"))]
    await message.answer("\n".join(lines))


def payout_usage() -> str:
    return escape(
        _("Usage: /payout <affiliate id | @username> <amount>, e.g. /payout 12345 5.00USD")
    )


@router.message(Command("payout"))
async def cmd_payout(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    creator = await creator_for(session, user, settings.admin_ids)
    if creator is None:
        await message.answer(_("This command is for course creators."))
        return
    args = (command.args or "").split()
    if len(args) != 2:
        await message.answer(payout_usage())
        return
    try:
        kind, amount, currency = parse_value(args[1])
    except CouponSpecError:
        kind, amount, currency = "", 0, None
    if kind != "fixed" or currency is None:
        await message.answer(payout_usage())
        return
    affiliate_id = await affiliates.find_affiliate(session, creator.id, args[0])
    if affiliate_id is None:
        await message.answer(_("No affiliate of yours by that id. See /affiliates."))
        return
    now = clock.now()
    result = await affiliates.record_payout(
        session, creator.id, affiliate_id, currency, amount, now
    )
    locale = current_locale()
    if isinstance(result, PayoutProblem):
        if result == PayoutProblem.BELOW_MIN:
            text = _("That is below your smallest payout. Nothing recorded.")
        elif result == PayoutProblem.NOT_POSITIVE:
            text = _("A payout must be more than zero. Nothing recorded.")
        else:
            rows = await affiliates.balances(
                session, now, creator_id=creator.id, affiliate_id=affiliate_id
            )
            payable = sum(b.payable for b in rows if b.currency == currency)
            text = _("That is more than the payable balance ({payable}). Nothing recorded.").format(
                payable=format_money(payable, currency, locale)
            )
        await message.answer(text)
        return
    await message.answer(
        _("💸 Payout of {amount} to {id} recorded. Payable now: {left}.").format(
            amount=format_money(result.amount, currency, locale),
            id=affiliate_id,
            left=format_money(result.payable_after, currency, locale),
        )
    )


# --- learners: /share, /earnings -----------------------------------------------------------


def link_problem_text(problem: LinkProblem) -> str:
    if problem == LinkProblem.OWN_PRODUCT:
        return _("This is your own course or plan: you cannot be its affiliate.")
    return _("This course is not available. It may have been removed or unpublished.")


async def share_text(
    session: AsyncSession, bot: Bot, user_id: int, course_id: int, kind: str = ProductKind.COURSE
) -> str:
    link = await affiliates.link_for(session, user_id, kind, course_id)
    if isinstance(link, LinkProblem):
        return link_problem_text(link)
    url = await bot_link(bot, f"a_{link.code}")
    if kind == ProductKind.PLAN:
        return _(
            "🔗 Your personal link for this plan:\n{url}\n\n"
            "Whoever opens it first and buys within 30 days counts as yours; if the creator "
            "runs an affiliate programme you earn a share of the sale and of their "
            "renewals. See /earnings."
        ).format(url=escape(url))
    return _(
        "🔗 Your personal link for this course:\n{url}\n\n"
        "Whoever opens it first and buys within 30 days counts as yours; if the creator "
        "runs an affiliate programme you earn a share of the sale. See /earnings."
    ).format(url=escape(url))


def _share_target(args: str) -> tuple[str, int] | None:
    """`<course number>` or `plan=<id>`."""
    key, sep, value = args.partition("=")
    if sep and key.lower() == ProductKind.PLAN:
        plan_id = parsing.record_id(value)
        return (ProductKind.PLAN, plan_id) if plan_id is not None else None
    course_id = parsing.record_id(args) if not sep else None
    return (ProductKind.COURSE, course_id) if course_id is not None else None


@router.message(Command("share"))
async def cmd_share(
    message: Message, command: CommandObject, session: AsyncSession, user: User, bot: Bot
) -> None:
    target = _share_target((command.args or "").strip())
    if target is None:
        await message.answer(escape(_("Usage: /share <course number> or /share plan=<id>")))
        return
    kind, product_id = target
    await message.answer(await share_text(session, bot, user.id, product_id, kind))


@router.callback_query(ShareCB.filter())
async def on_share(
    callback: CallbackQuery, callback_data: ShareCB, session: AsyncSession, user: User, bot: Bot
) -> None:
    await callback.answer()
    await bot.send_message(user.id, await share_text(session, bot, user.id, callback_data.id))


@router.message(Command("earnings"))
async def cmd_earnings(message: Message, session: AsyncSession, user: User, clock: Clock) -> None:
    rows = await affiliates.balances(session, clock.now(), affiliate_id=user.id)
    if not rows:
        await message.answer(
            _("No earnings yet. Share a course with /share and earn when someone buys it.")
        )
        return
    locale = current_locale()
    lines = [_("<b>💰 Your affiliate earnings</b>"), ""]
    for (_creator_id, name), items in affiliates.group_by_creator(rows).items():
        lines.append(f"<b>{escape(name)}</b>")
        for b in items:
            lines.append(
                "  "
                + _("{currency}: pending {pending} · payable {payable} · paid {paid}").format(
                    currency=b.currency,
                    pending=format_money(b.pending, b.currency, locale),
                    payable=format_money(b.payable, b.currency, locale),
                    paid=format_money(b.paid, b.currency, locale),
                )
            )
    await message.answer("\n".join(lines))


# --- gifts ------------------------------------------------------------------------------


def gift_keyboard(offer: Offer, locale: str) -> InlineKeyboardMarkup | None:
    rows = [
        [
            InlineKeyboardButton(
                text=method_label(q.method, q.amount, q.currency, locale),
                callback_data=GiftPayCB(id=offer.product.id, m=q.method).pack(),
            )
        ]
        for q in offer.quotes
        if q.method in GIFT_METHODS
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def _gift_offer(
    session: AsyncSession, user_id: int, course_id: int, settings: Settings, clock: Clock
) -> Offer | OfferProblem:
    offer = await make_offer(
        session, user_id, ProductKind.COURSE, course_id, settings, now=clock.now(), gift=True
    )
    if isinstance(offer, Offer) and offer.product.is_free:
        return OfferProblem.UNAVAILABLE  # nothing to pay for: share the course instead
    return offer


@router.callback_query(GiftCB.filter())
async def on_gift(
    callback: CallbackQuery,
    callback_data: GiftCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    offer = await _gift_offer(session, user.id, callback_data.id, settings, clock)
    markup = gift_keyboard(offer, current_locale()) if isinstance(offer, Offer) else None
    if isinstance(offer, OfferProblem) or markup is None:
        problem = offer if isinstance(offer, OfferProblem) else OfferProblem.NO_METHODS
        await callback.answer(offer_problem_text(problem), show_alert=True)
        return
    await callback.answer()
    await callback.bot.send_message(  # type: ignore[union-attr]
        user.id,
        _(
            "🎁 <b>{title}</b> as a gift: after paying you get a link to send. Whoever "
            "opens it first gets the course (once). How would you like to pay?"
        ).format(title=escape(offer.product.title)),
        reply_markup=markup,
    )


@router.callback_query(GiftPayCB.filter())
async def on_gift_pay(
    callback: CallbackQuery,
    callback_data: GiftPayCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
) -> None:
    now = clock.now()
    offer = await _gift_offer(session, user.id, callback_data.id, settings, clock)
    if isinstance(offer, OfferProblem):
        await callback.answer(offer_problem_text(offer), show_alert=True)
        return
    if callback_data.m not in GIFT_METHODS or offer.quote_for(callback_data.m) is None:
        await callback.answer(
            _("This payment method is not available for this course."), show_alert=True
        )
        return
    order = await open_order(session, user.id, offer, callback_data.m, settings, now, gift=True)
    await commit_before_invoice(session)
    fields = _invoice_fields(offer, order, settings)
    fields["title"] = ("🎁 " + str(fields["title"]))[:32]
    await bot.send_invoice(chat_id=user.id, **fields)  # type: ignore[arg-type]
    await callback.answer()


def claim_text(outcome: ClaimOutcome, title: str) -> str:
    texts = {
        ClaimOutcome.CLAIMED: _(
            "🎁 <b>{title}</b> is yours — a gift! Lessons arrive in this chat; see /my."
        ),
        ClaimOutcome.FORGED: _("This gift link is not valid. Check that it was copied whole."),
        ClaimOutcome.VOID: _("This gift was refunded, so the link no longer works."),
        ClaimOutcome.TAKEN: _("This gift has already been claimed."),
        ClaimOutcome.OWN: _("This is the gift you bought: send the link to the person it is for."),
        ClaimOutcome.OWNED: _(
            "You already have «{title}», so the gift stays unclaimed for someone else."
        ),
    }
    return texts[outcome].format(title=escape(title))


async def claim_gift(
    message: Message,
    token: str,
    session: AsyncSession,
    user: User,
    bot: Bot,
    settings: Settings,
    clock: Clock,
    i18n: I18n,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    """/start g_<token>: claim once; the buyer is told (queued, sent after the commit)."""
    now = clock.now()
    result = await gifts.claim(session, token, user.id, now)
    await message.answer(claim_text(result.outcome, result.title))
    if result.outcome != ClaimOutcome.CLAIMED or result.buyer_id is None:
        return
    buyer = await session.get(User, result.buyer_id)
    locale = pick_locale(
        buyer.language if buyer else None,
        buyer.language_code if buyer else None,
        settings.default_language,
    )
    with i18n.use_locale(locale):
        text = _("🎁 Your gift «{title}» was claimed by {name}. Thank you for sharing!").format(
            title=escape(result.title), name=escape(user.first_name or "")
        )
    notifier = Notifier(bot, sessionmaker, settings, scheduler)
    notice = await notifier.queue(session, result.buyer_id, text, None, now)
    after_commit.append(lambda: notifier.send(notice))
