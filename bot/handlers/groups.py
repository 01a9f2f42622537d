"""Paid groups, the learner's side and the chat's: the join-request gate, the chat_member
guard, buying/trial/subscribing to a plan, cancelling a Stars subscription renewal.

Also the adapters the membership jobs use (ChatAdmin over the Bot, localised texts).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape
from typing import TypeVar

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    CallbackQuery,
    ChatJoinRequest,
    ChatMemberUpdated,
    LabeledPrice,
    Message,
)
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.sources import Source
from bot.config import Settings
from bot.growth import winback
from bot.handlers.common import Command, current_locale, is_private
from bot.i18n import pick_locale
from bot.keyboards.groups import (
    PlanCB,
    held_plan_keyboard,
    link_keyboard,
    plan_keyboard,
    plans_keyboard,
)
from bot.keyboards.menus import price_line
from bot.keyboards.payments import methods_keyboard
from bot.models import (
    EventKind,
    PaymentMethod,
    Plan,
    ProductKind,
    User,
)
from bot.payments.orders import Offer, OfferProblem, make_offer, open_order
from bot.scheduler.clock import Clock
from bot.scheduler.jobs import JobRegistry
from bot.scheduler.sender import Button, Outgoing, RateLimitedSender
from bot.scheduler.worker import Scheduler
from bot.services import groups as groups_service
from bot.services import memberships
from bot.services.events import EventBuffer
from bot.telegram.sender import map_error
from bot.text import shorten

log = logging.getLogger(__name__)

router = Router(name=__name__)

T = TypeVar("T")

PLANS_LIMIT = 10


def plain(value: object) -> str:
    """An aiogram enum (str, Enum) or a plain string, as its value: str() gives the name."""
    return str(getattr(value, "value", value))


# --- adapters for the scheduled jobs ------------------------------------------------------


class BotChatAdmin:
    """Invite links and removals for the scheduled jobs.

    With a `limiter` (the scheduler's sender) every call takes a slot of the same global
    budget as the lessons and reminders, and waits out the same 429 pauses: a sweep that
    removes hundreds of expired members must not push the bot over Telegram's limits.
    """

    def __init__(self, bot: Bot, limiter: RateLimitedSender | None = None) -> None:
        self.bot = bot
        self.limiter = limiter

    async def create_join_link(self, chat_id: int, name: str) -> str:
        link = await self._call(
            lambda: self.bot.create_chat_invite_link(
                chat_id=chat_id, name=name, creates_join_request=True
            )
        )
        return link.invite_link

    async def remove(self, chat_id: int, user_id: int) -> None:
        await self._call(lambda: self.bot.ban_chat_member(chat_id=chat_id, user_id=user_id))
        await self._call(
            lambda: self.bot.unban_chat_member(
                chat_id=chat_id, user_id=user_id, only_if_banned=True
            )
        )

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        async def mapped() -> T:
            try:
                return await request()
            except TelegramAPIError as exc:
                raise map_error(exc) from exc

        if self.limiter is None:
            return await mapped()
        return await self.limiter.call(mapped)


class I18nTexts:
    def __init__(self, i18n: I18n) -> None:
        self.i18n = i18n

    def _loc(self, locale: str) -> str:
        return pick_locale(locale, None, self.i18n.default_locale)

    def invite(self, locale: str, plan: str, links: list[tuple[str, str]]) -> Outgoing:
        loc = self._loc(locale)

        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=loc)

        lines = [
            _("🎟 Your access to {plan} is ready. Your personal links:").format(plan=escape(plan))
        ]
        lines += [f"• {escape(title)}: {link}" for title, link in links]
        lines.append(_("Each link works for you only: the bot approves your request."))
        return Outgoing(text="\n".join(lines))

    def reminder(
        self, locale: str, plan: str, plan_id: int, expires_at: datetime, hours: int
    ) -> Outgoing:
        loc = self._loc(locale)

        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=loc)

        def ngettext(singular: str, plural: str, n: int) -> str:
            return self.i18n.gettext(singular, plural, n, locale=loc)

        text = ngettext(
            "⏰ Your access to {plan} ends in {hours} hour ({when} UTC).",
            "⏰ Your access to {plan} ends in {hours} hours ({when} UTC).",
            hours,
        ).format(plan=escape(plan), hours=hours, when=expires_at.strftime("%Y-%m-%d %H:%M"))
        renew = Button(_("🔄 Renew"), PlanCB(a="buy", id=plan_id).pack())
        return Outgoing(text=text, buttons=((renew,),))

    def removed(self, locale: str, plan: str, plan_id: int) -> Outgoing:
        loc = self._loc(locale)

        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=loc)

        text = _("Your access to {plan} has ended. Renew to come back any time.").format(
            plan=escape(plan)
        )
        renew = Button(_("🔄 Renew"), PlanCB(a="buy", id=plan_id).pack())
        return Outgoing(text=text, buttons=((renew,),))


def install(
    registry: JobRegistry,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
    limiter: RateLimitedSender | None = None,
) -> None:
    """Called by app.create_scheduler: hooks on plan grants/revokes and the job kinds."""
    memberships.install(settings.grace_period_hours)
    admin = BotChatAdmin(bot, limiter)
    memberships.register(registry, memberships.Wiring(admin, I18nTexts(i18n)))


# --- the gate -----------------------------------------------------------------------------


def how_to_buy(title: str) -> str:
    return _(
        "Joining {chat} needs an active plan. Buy access below, then use your personal link."
    ).format(chat=escape(title))


async def _tell(bot: Bot, chat_id: int, text: str, **kwargs: object) -> None:
    try:
        await bot.send_message(chat_id, text, **kwargs)  # type: ignore[arg-type]
    except TelegramAPIError as exc:
        log.info("could not message %s: %s", chat_id, exc)


def record_plan_view(events: EventBuffer, user_id: int, plan: Plan, source: Source) -> None:
    """A plan card was shown: its funnel starts at "viewed", and the view's source is the
    first touch a later purchase is credited to."""
    events.record(
        EventKind.VIEW,
        user_id=user_id,
        creator_id=plan.creator_id,
        data={"src": source, "kind": ProductKind.PLAN, "id": plan.id},
    )


@router.chat_join_request()
async def on_join_request(
    request: ChatJoinRequest, session: AsyncSession, bot: Bot, clock: Clock, events: EventBuffer
) -> None:
    group = await groups_service.group_by_chat(session, request.chat.id)
    if group is None:
        return  # not a chat we sell: leave it to its admins
    user_id = request.from_user.id
    if await groups_service.is_allowed(session, group, user_id, clock.now()):
        await request.approve()
        await groups_service.note_member(session, group, user_id, "member")
        return
    await request.decline()
    plans = [p for p in await groups_service.group_plans(session, group) if p.published]
    if not plans:
        await _tell(bot, request.user_chat_id, _("This chat is not open for new members now."))
        return
    text = how_to_buy(group.title)
    if len(plans) == 1:
        plan = plans[0]
        markup = plan_keyboard(
            plan.id, trial=plan.trial_days > 0, subscription=plan.stars_subscription
        )
    else:
        # Several plans sell this chat (monthly, yearly, lifetime): one message, each
        # plan's buttons named for it.
        plans = plans[:PLANS_LIMIT]
        text += "\n\n" + "\n".join(f"• {plan_text(p, inline=True)}" for p in plans)
        markup = plans_keyboard(
            [(p.id, p.title, p.trial_days > 0, p.stars_subscription) for p in plans]
        )
    await _tell(bot, request.user_chat_id, text, reply_markup=markup)
    for plan in plans:  # the chat's own invite link brought them: no other source
        record_plan_view(events, user_id, plan, Source.DIRECT)


@router.chat_member()
async def on_chat_member(
    update: ChatMemberUpdated, session: AsyncSession, bot: Bot, clock: Clock
) -> None:
    """The guard: whoever got in without an entitlement (added by someone, an old link)."""
    group = await groups_service.group_by_chat(session, update.chat.id)
    if group is None:
        return
    member = update.new_chat_member
    user = member.user
    if user.is_bot:
        return
    status = plain(member.status)
    await groups_service.note_member(session, group, user.id, status)
    if status not in ("member", "restricted"):
        return
    if await groups_service.is_allowed(session, group, user.id, clock.now()):
        return
    try:
        await BotChatAdmin(bot).remove(group.chat_id, user.id)
    except Exception as exc:
        log.warning("guard could not remove %s from %s: %s", user.id, group.chat_id, exc)
        return
    await groups_service.note_member(session, group, user.id, "left")
    log.info("guard removed %s from %s (no entitlement)", user.id, group.chat_id)


# --- buying a plan ------------------------------------------------------------------------


def plan_price(plan: Plan) -> str:
    """What a plan costs, in each way it can be paid (the list price, before any code)."""
    return price_line(
        plan.price_minor if plan.accepts_card else 0,
        plan.currency,
        plan.stars_price if plan.accepts_stars else 0,
        current_locale(),
    )


def plan_text(plan: Plan, *, inline: bool = False) -> str:
    if plan.period_days is None:
        period = _("lifetime access")
    else:
        days = plan.period_days
        period = ngettext("{days} day of access", "{days} days of access", days).format(days=days)
    price = plan_price(plan)
    if inline:
        return f"<b>{escape(plan.title)}</b> — {period}, {price}"
    text = f"<b>{escape(plan.title)}</b>\n{period}\n" + _("Price: {price}").format(price=price)
    if plan.stars_subscription and plan.stars_price > 0:
        text += "\n" + _("Or subscribe: ⭐ {stars} every 30 days, cancel any time.").format(
            stars=plan.stars_price
        )
    if plan.trial_days:
        days = plan.trial_days
        text += "\n" + ngettext("Free trial: {days} day", "Free trial: {days} days", days).format(
            days=days
        )
    return text


@router.callback_query(PlanCB.filter())
async def on_plan(
    callback: CallbackQuery,
    callback_data: PlanCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
    scheduler: Scheduler | None = None,
) -> None:
    action = callback_data.a
    if action == "cancel":
        # A subscriber can always stop paying: whatever happened to the plan since
        # (unpublished, edited, deleted), the next renewal must not charge them.
        await _cancel_subscription(callback, session, user, callback_data.id, bot, clock)
        return
    if action == "link":
        # Also for a plan no longer on sale: whoever holds it keeps their way in.
        await _invite_again(callback, session, user, callback_data.id, clock, scheduler)
        return
    plan = await session.get(Plan, callback_data.id)
    if plan is None or not plan.published:
        await callback.answer(_("This plan is not on sale."), show_alert=True)
        return
    if action == "trial":
        result = await groups_service.start_trial(session, user.id, plan, clock.now())
        if isinstance(result, groups_service.TrialProblem):
            await callback.answer(
                _("The free trial is used up. Buy access to continue."), show_alert=True
            )
            return
        await callback.answer(_("Your trial has started. Your invite is on its way."))
        return
    offer = await make_offer(session, user.id, ProductKind.PLAN, plan.id, settings)
    if offer == OfferProblem.OWNED:
        await callback.answer(_("You already have lifetime access to this plan."), show_alert=True)
        return
    if not isinstance(offer, Offer):
        await callback.answer(_("This plan is not on sale."), show_alert=True)
        return
    if action == "sub":
        await _subscribe(callback, session, user, plan, offer, settings, bot)
        return
    locale = current_locale()
    quotes = [(q.method, q.amount, q.currency) for q in offer.quotes]
    await callback.answer()
    await bot.send_message(
        user.id,
        plan_text(plan),
        reply_markup=methods_keyboard(ProductKind.PLAN, plan.id, quotes, 0, locale),
    )


async def _subscribe(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    plan: Plan,
    offer: Offer,
    settings: Settings,
    bot: Bot,
) -> None:
    if not plan.stars_subscription or offer.quote_for(PaymentMethod.STARS) is None:
        await callback.answer(_("This plan has no Stars subscription."), show_alert=True)
        return
    order = await open_order(session, user.id, offer, PaymentMethod.STARS, settings)
    title = shorten(plan.title, 32)
    url = await bot.create_invoice_link(
        title=title,
        description=(plan.description.strip() or plan.title)[:255],
        payload=order.public_ref,
        currency="XTR",
        prices=[LabeledPrice(label=title, amount=order.amount_minor)],
        provider_token="",
        subscription_period=groups_service.SUBSCRIPTION_PERIOD,
    )
    await callback.answer()
    await bot.send_message(
        user.id,
        _(
            "⭐ {plan}: {stars} Stars every 30 days. Cancel renewal any time with /subscriptions."
        ).format(plan=escape(plan.title), stars=order.amount_minor),
        reply_markup=link_keyboard(_("⭐ Subscribe"), url),
    )


async def _cancel_subscription(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    plan_id: int,
    bot: Bot,
    clock: Clock,
) -> None:
    sub = await groups_service.subscription(session, user.id, plan_id)
    if sub is None:
        await callback.answer(_("No subscription to cancel."), show_alert=True)
        return
    await bot.edit_user_star_subscription(
        user_id=user.id, telegram_payment_charge_id=sub.charge_id, is_canceled=True
    )
    await callback.answer()
    await bot.send_message(
        user.id,
        _(
            "Renewal of {plan} is cancelled. Your access lasts to the end of the paid period."
        ).format(plan=escape(sub.plan_title)),
    )
    plan = await session.get(Plan, plan_id)
    if plan is not None:
        # The win-back offer (if the creator set one) waits for the period to end.
        await winback.offer(session, user.id, plan, winback.Reason.CANCEL, clock.now())


async def _invite_again(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    plan_id: int,
    clock: Clock,
    scheduler: Scheduler | None,
) -> None:
    result = await memberships.invite_again(session, user.id, plan_id, clock.now())
    if result == memberships.InviteAgain.NOT_ACTIVE:
        await callback.answer(_("This plan is not active for you."), show_alert=True)
        return
    if result == memberships.InviteAgain.INSIDE:
        await callback.answer(_("You are already in the plan's chats."), show_alert=True)
        return
    if result == memberships.InviteAgain.QUEUED and scheduler is not None:
        # The job runs after this update commits; waking only saves a poll interval.
        scheduler.wake()
    await callback.answer(_("A new personal invite link is on its way to this chat."))


def until_text(expires_at: datetime | None) -> str:
    if expires_at is None:
        return _("for life")
    return _("until {when} UTC").format(when=expires_at.strftime("%Y-%m-%d %H:%M"))


@router.message(Command("subscriptions"), is_private)
async def cmd_subscriptions(
    message: Message, session: AsyncSession, user: User, clock: Clock
) -> None:
    held = await groups_service.plans_of(session, user.id, clock.now(), renewing=True)
    if not held:
        await message.answer(_("You have no active plans."))
        return
    for plan in held:
        state = until_text(plan.expires_at) if plan.active else _("access ended")
        text = f"<b>{escape(plan.title)}</b> — {state}"
        if plan.subscription is not None and plan.subscription.renews_at is not None:
            text += "\n" + _("Renews on {when} UTC unless you cancel.").format(
                when=plan.subscription.renews_at.strftime("%Y-%m-%d %H:%M")
            )
        markup = held_plan_keyboard(
            plan.plan_id,
            cancel=plan.subscription is not None,
            link=plan.active and plan.has_chats,
        )
        await message.answer(text, reply_markup=markup)


async def send_plan_card(
    message: Message,
    session: AsyncSession,
    user: User,
    plan_id: int,
    events: EventBuffer,
    source: Source,
) -> bool:
    """One plan's card (an affiliate's link to it, say); False when it is not on sale."""
    plan = await session.get(Plan, plan_id)
    if plan is None or not plan.published:
        return False
    markup = plan_keyboard(plan.id, trial=plan.trial_days > 0, subscription=plan.stars_subscription)
    await message.answer(plan_text(plan), reply_markup=markup)
    record_plan_view(events, user.id, plan, source)
    return True


@router.message(Command("plans"), is_private)
async def cmd_plans(
    message: Message, session: AsyncSession, user: User, events: EventBuffer
) -> None:
    """Published plans, each with its Buy / Subscribe / Trial buttons: a card view each,
    from the catalog, as a course card's is."""
    plans = list(
        await session.scalars(
            select(Plan).where(Plan.published.is_(True)).order_by(Plan.id).limit(PLANS_LIMIT)
        )
    )
    if not plans:
        await message.answer(_("No plans on sale yet."))
        return
    for plan in plans:
        markup = plan_keyboard(
            plan.id, trial=plan.trial_days > 0, subscription=plan.stars_subscription
        )
        await message.answer(plan_text(plan), reply_markup=markup)
        record_plan_view(events, user.id, plan, Source.CATALOG)
