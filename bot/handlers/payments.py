"""Buying: Buy → choice of method → invoice (or link, or web checkout) → pre-checkout
re-check → successful_payment → receipt. Thin: the rules live in bot.payments."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from html import escape

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.handlers.common import current_locale, list_language, show
from bot.handlers.recommend import suggestion_rows
from bot.i18n import pick_locale
from bot.keyboards.callbacks import BuyCB
from bot.keyboards.payments import (
    LinkCB,
    PayCB,
    PromoCB,
    methods_keyboard,
    receipt_keyboard,
    url_keyboard,
)
from bot.models import Coupon, EventKind, Order, Payment, PaymentMethod, ProductKind, User
from bot.money import STARS, format_money
from bot.payments import coupons as coupons_service
from bot.payments.checkout import Outcome, PaymentResult, RefundReason, record_payment
from bot.payments.coupons import CouponProblem, CouponUsedUp
from bot.payments.gateways import (
    AlreadyRefunded,
    Gateways,
    ProviderError,
    StarTxn,
)
from bot.payments.orders import (
    Offer,
    OfferProblem,
    Refusal,
    check_pre_checkout,
    claim_free,
    make_offer,
    open_order,
)
from bot.payments.refunds import RefundResult, RefundStatus, refund_payment
from bot.payments.stripe_api import StripeGateway
from bot.payments.web_checkout import start_web_checkout
from bot.scheduler import notices
from bot.scheduler.clock import Clock
from bot.scheduler.worker import Scheduler
from bot.services.events import EventBuffer
from bot.services.search import CatalogSearch
from bot.telegram.sender import TelegramSender, outgoing
from bot.telegram.stars import TelegramStars
from bot.text import shorten

log = logging.getLogger(__name__)

router = Router(name=__name__)

TITLE_LIMIT = 32
DESCRIPTION_LIMIT = 255
TELEGRAM_METHODS = (PaymentMethod.STARS, PaymentMethod.CARD)
UNKNOWN_ORDER_RETRIES = (0.05, 0.1, 0.2, 0.4, 0.8)


class PromoState(StatesGroup):
    code = State()


# --- the payment services' view of Telegram and Stripe -----------------------------------


@lru_cache(maxsize=4)
def _stripe(key: str, base: str) -> StripeGateway:
    return StripeGateway(key, base)


def stripe_gateway(settings: Settings) -> StripeGateway | None:
    return _stripe(settings.stripe_key, settings.stripe_api_base) if settings.stripe_key else None


def gateways(bot: Bot, settings: Settings) -> Gateways:
    return Gateways(stars=TelegramStars(bot), card=stripe_gateway(settings))


# --- texts ------------------------------------------------------------------------------


def method_name(method: str) -> str:
    names: dict[str, str] = {
        PaymentMethod.STARS: _("Telegram Stars"),
        PaymentMethod.CARD: _("card"),
        PaymentMethod.WEB: _("card (web checkout)"),
    }
    return names.get(method, _("free"))


def offer_problem_text(problem: OfferProblem) -> str:
    if problem == OfferProblem.OWNED:
        return _("You already have this. Find it in /my.")
    if problem == OfferProblem.NOT_WORTH:
        return _(
            "You already own some of these courses: the bundle would not cost you less than "
            "buying the others separately. Open them from the bundle's page."
        )
    if problem == OfferProblem.NO_METHODS:
        return _("This course cannot be bought right now. Please try again later.")
    return _("This course is not available. It may have been removed or unpublished.")


def refusal_text(refusal: Refusal) -> str:
    """What the learner reads when Telegram's payment sheet is refused (≤ 255 chars)."""
    texts = {
        Refusal.PRICE_CHANGED: _(
            "The price changed since this invoice was made. Nothing was charged. "
            "Open the course and press Buy again to pay the current price."
        ),
        Refusal.EXPIRED: _(
            "This invoice has expired. Nothing was charged. Press Buy again for a new one."
        ),
        Refusal.ALREADY_PAID: _("This order is already paid. Nothing was charged."),
        Refusal.OWNED: _("You already have this course. Nothing was charged."),
        Refusal.COUPON_INVALID: _(
            "The promo code on this invoice is no longer valid. Nothing was charged. "
            "Press Buy again to see the current price."
        ),
        Refusal.UNAVAILABLE: _("This course is no longer on sale. Nothing was charged."),
        Refusal.METHOD_OFF: _(
            "This payment method is no longer accepted for this course. Nothing was charged."
        ),
        Refusal.NOT_YOURS: _(
            "This invoice was made for another account. Open the course and press Buy."
        ),
    }
    return texts.get(
        refusal,
        _("This invoice is no longer valid. Nothing was charged. Press Buy again."),
    )


def choose_text(offer: Offer, locale: str) -> str:
    lines = [
        _("<b>{title}</b>").format(title=escape(offer.product.title)),
        "",
    ]
    if offer.coupon is not None:
        lines.append(_("🏷 Promo code {code} applied.").format(code=escape(offer.coupon.code)))
        for q in offer.quotes:
            if q.discounted:
                lines.append(
                    _("{method}: <s>{old}</s> → {new}").format(
                        method=method_name(q.method),
                        old=format_money(q.list_amount, q.currency, locale),
                        new=format_money(q.amount, q.currency, locale),
                    )
                )
        lines.append("")
    lines.append(_("How would you like to pay?"))
    return "\n".join(lines)


def receipt_text(
    result: PaymentResult, method: str, locale: str, gift_link: str | None = None
) -> str:
    if gift_link is not None:
        what = _(
            "🎁 <b>{title}</b> is paid as a gift. Send this link to the person it is for; "
            "it works once, and we tell you when it is claimed:"
        )
        what += "\n" + escape(gift_link)
    elif result.product_kind == ProductKind.PLAN:
        what = _(
            "<b>{title}</b> is yours. Your personal invite link comes in a separate message "
            "in this chat; /subscriptions shows your plans and how long they last."
        )
    elif result.product_kind == ProductKind.BUNDLE:
        what = _(
            "Every course of <b>{title}</b> is yours. Lessons arrive in this chat; "
            "find them any time in /my."
        )
    else:
        what = _("<b>{title}</b> is yours. Lessons arrive in this chat; find it any time in /my.")
    lines = [
        _("✅ Payment received — thank you!"),
        "",
        what.format(title=escape(result.title)),
        "",
        _("Paid: {amount} ({method})").format(
            amount=format_money(result.amount, result.currency, locale),
            method=method_name(method),
        ),
        _("Order: <code>{ref}</code>").format(ref=escape(result.order_ref or "")),
    ]
    if result.late:
        lines += [
            "",
            _("This invoice was older than your latest order; we credited it as paid."),
        ]
    lines += ["", _("Questions or a refund: /paysupport")]
    return "\n".join(lines)


def free_text(title: str) -> str:
    return _("🎁 <b>{title}</b> is yours, free. Lessons arrive in this chat; see /my.").format(
        title=escape(title)
    )


def auto_refund_text(result: PaymentResult, refund: RefundResult | None, locale: str) -> str:
    amount = format_money(result.amount, result.currency, locale)
    if result.reason in (RefundReason.ALREADY_PAID, RefundReason.OWNED):
        why = _("You already have «{title}», so this extra payment of {amount} is not needed.")
    elif result.reason == RefundReason.AMOUNT_DIFFERS:
        why = _(
            "The {amount} charged is not what the order for «{title}» asks, "
            "so it cannot be applied."
        )
    else:
        why = _("This invoice is no longer valid, so your payment of {amount} cannot be applied.")
    why = why.format(title=escape(result.title), amount=amount)
    if refund is not None and refund.status in (RefundStatus.DONE, RefundStatus.SYNCED):
        return why + "\n" + _("We refunded it: it goes back the way you paid.")
    return (
        why
        + "\n"
        + _(
            "We could not refund it automatically; we will do it by hand. "
            "Reference: <code>{ref}</code>. See /paysupport."
        ).format(ref=escape(result.order_ref or str(result.payment_id or "")))
    )


def refunded_text(result: RefundResult, locale: str) -> str:
    text = _("↩️ Your payment of {amount} for «{title}» was refunded.").format(
        amount=format_money(result.amount, result.currency, locale), title=escape(result.title)
    )
    if result.revoked:
        text += "\n" + _("Access to it has ended.")
    if result.currency == STARS:
        text += "\n" + _("The Stars are back on your balance.")
    else:
        text += "\n" + _("Card refunds usually appear within 5–10 days.")
    return text


# --- helpers ---------------------------------------------------------------------------


def _kind(kind: str) -> str | None:
    return kind if kind in (ProductKind.COURSE, ProductKind.PLAN, ProductKind.BUNDLE) else None


async def _coupon(
    session: AsyncSession, settings: Settings, user_id: int, coupon_id: int, tag: str
) -> Coupon | None:
    """The coupon a button carries, only if this learner typed its code (see coupon_tag)."""
    if coupon_id <= 0 or not coupons_service.tag_ok(_secret(settings), user_id, coupon_id, tag):
        return None
    return await session.get(Coupon, coupon_id)


def _secret(settings: Settings) -> str:
    return settings.token or "lyceum"


async def _show_offer(callback: CallbackQuery, offer: Offer) -> None:
    locale = current_locale()
    quotes = [(q.method, q.amount, q.currency) for q in offer.quotes]
    coupon_id = offer.coupon.id if offer.coupon else 0
    markup = methods_keyboard(offer.product.kind, offer.product.id, quotes, coupon_id, locale)
    await show(callback, choose_text(offer, locale), markup)


async def _tell_free(
    session: AsyncSession,
    after_commit: list[Callable[[], object]],
    notifier: Notifier,
    chat_id: int,
    title: str,
    now: datetime,
    callback: CallbackQuery | None = None,
) -> None:
    """Book first, then speak, for a free grant too: its message is queued with the grant
    and sent after the commit, so a failed send (or a stale callback) never takes the
    course away again; the scheduler retries what could not be sent."""
    notice = await notifier.queue(session, chat_id, free_text(title), receipt_keyboard(), now)
    if callback is not None:
        after_commit.append(callback.answer)
    after_commit.append(lambda: notifier.send(notice))


async def commit_before_invoice(session: AsyncSession) -> None:
    """The one place a handler commits (the DB middleware owns every other commit).

    A learner can pay within milliseconds of seeing the invoice; the pre-checkout must
    find the order then, so it is committed before Telegram is asked to show it.
    """
    await session.commit()


def _invoice_fields(offer: Offer, order: Order, settings: Settings) -> dict[str, object]:
    product = offer.product
    description = product.description.strip() or product.title
    if offer.coupon is not None:
        description = f"🏷 {offer.coupon.code} · " + description
    title = shorten(product.title, TITLE_LIMIT)
    if len(description) > DESCRIPTION_LIMIT:
        description = description[: DESCRIPTION_LIMIT - 1] + "…"
    return {
        "title": title,
        "description": description,
        "payload": order.public_ref,
        "currency": order.currency,
        "prices": [LabeledPrice(label=title, amount=order.amount_minor)],
        # Stars take an empty provider token; cards take the Stripe one from @BotFather.
        "provider_token": "" if order.method == PaymentMethod.STARS else settings.provider_token,
    }


# --- Buy and the choice of method ------------------------------------------------------


def _record_buy(events: EventBuffer, user_id: int, offer: Offer, now: datetime) -> None:
    product = offer.product
    events.record(
        EventKind.BUY,
        user_id=user_id,
        course_id=product.id if product.kind == ProductKind.COURSE else None,
        creator_id=product.creator_id,
        data={"kind": product.kind, "id": product.id},
        at=now,
    )


@router.callback_query(BuyCB.filter())
async def on_buy(
    callback: CallbackQuery,
    callback_data: BuyCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
    events: EventBuffer,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    offer = await make_offer(
        session, user.id, ProductKind.COURSE, callback_data.id, settings, now=now
    )
    if isinstance(offer, OfferProblem):
        await callback.answer(offer_problem_text(offer), show_alert=True)
        return
    _record_buy(events, user.id, offer, now)
    if offer.product.is_free:
        await claim_free(session, user.id, offer, now)
        notifier = Notifier(bot, sessionmaker, settings, scheduler)
        title = offer.product.title
        await _tell_free(session, after_commit, notifier, user.id, title, now, callback)
        return
    await _show_offer(callback, offer)


@router.callback_query(PayCB.filter())
async def on_pay(
    callback: CallbackQuery,
    callback_data: PayCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
    events: EventBuffer,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    kind = _kind(callback_data.k)
    coupon = await _coupon(session, settings, user.id, callback_data.cp, callback_data.t)
    offer = (
        await make_offer(session, user.id, kind, callback_data.id, settings, coupon, now)
        if kind
        else OfferProblem.UNAVAILABLE
    )
    if isinstance(offer, OfferProblem):
        await callback.answer(offer_problem_text(offer), show_alert=True)
        return
    if offer.product.kind == ProductKind.PLAN:
        _record_buy(events, user.id, offer, now)  # a plan's Buy is its method button
    if offer.free:
        try:
            await claim_free(session, user.id, offer, now)
        except CouponUsedUp:
            await callback.answer(coupon_problem_text(CouponProblem.USED_UP), show_alert=True)
            return
        notifier = Notifier(bot, sessionmaker, settings, scheduler)
        title = offer.product.title
        await _tell_free(session, after_commit, notifier, user.id, title, now, callback)
        return
    if offer.quote_for(callback_data.m) is None:
        await callback.answer(
            _("This payment method is not available for this course."), show_alert=True
        )
        return
    if callback_data.m == PaymentMethod.WEB:
        await _web_checkout(callback, session, user, offer, settings, bot, now)
        return
    try:
        order = await open_order(session, user.id, offer, callback_data.m, settings, now)
    except CouponUsedUp:
        # Someone else's invoice took the code's last use a moment ago: no invoice.
        await callback.answer(coupon_problem_text(CouponProblem.USED_UP), show_alert=True)
        return
    await commit_before_invoice(session)
    await bot.send_invoice(chat_id=user.id, **_invoice_fields(offer, order, settings))  # type: ignore[arg-type]
    if callback_data.cp and offer.coupon is None:
        await callback.answer(coupon_dropped_text(), show_alert=True)
    else:
        await callback.answer()


async def _web_checkout(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    offer: Offer,
    settings: Settings,
    bot: Bot,
    now: datetime,
) -> None:
    gateway = stripe_gateway(settings)
    if gateway is None:
        await callback.answer(
            _("This payment method is not available for this course."), show_alert=True
        )
        return
    me = await bot.me()
    try:
        link = await start_web_checkout(
            session, user.id, offer, settings, gateway, me.username, now=now
        )
    except CouponUsedUp:
        await callback.answer(coupon_problem_text(CouponProblem.USED_UP), show_alert=True)
        return
    except ProviderError as exc:
        log.warning("checkout session failed: %s", exc.detail)
        await callback.answer(
            _("The payment page could not be opened. Please try another method or later."),
            show_alert=True,
        )
        return
    await callback.answer()
    await bot.send_message(
        user.id,
        _(
            "Pay for <b>{title}</b> on Stripe's secure page. Access opens here as soon as "
            "the payment is confirmed."
        ).format(title=escape(offer.product.title)),
        reply_markup=url_keyboard(_("🌐 Open the payment page"), link.url),
    )


@router.callback_query(LinkCB.filter())
async def on_invoice_link(
    callback: CallbackQuery,
    callback_data: LinkCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    kind = _kind(callback_data.k)
    coupon = await _coupon(session, settings, user.id, callback_data.cp, callback_data.t)
    offer = (
        await make_offer(session, user.id, kind, callback_data.id, settings, coupon, now)
        if kind
        else OfferProblem.UNAVAILABLE
    )
    if isinstance(offer, OfferProblem):
        await callback.answer(offer_problem_text(offer), show_alert=True)
        return
    q = offer.quote_for(callback_data.m)
    if callback_data.m not in TELEGRAM_METHODS or q is None or q.amount <= 0:
        await callback.answer(
            _("This payment method is not available for this course."), show_alert=True
        )
        return
    try:
        order = await open_order(session, user.id, offer, callback_data.m, settings, now)
    except CouponUsedUp:
        await callback.answer(coupon_problem_text(CouponProblem.USED_UP), show_alert=True)
        return
    await commit_before_invoice(session)
    url = await bot.create_invoice_link(**_invoice_fields(offer, order, settings))  # type: ignore[arg-type]
    await callback.answer()
    await bot.send_message(
        user.id,
        _(
            "Your payment link for <b>{title}</b>. Open it from this account (in a Mini App, "
            "another device or later); it is valid until the order expires."
        ).format(title=escape(offer.product.title)),
        reply_markup=url_keyboard(_("💳 Pay"), url),
    )


# --- promo codes -----------------------------------------------------------------------


def coupon_dropped_text() -> str:
    return _("The promo code is no longer valid, so this invoice is at the full price.")


def coupon_problem_text(problem: CouponProblem) -> str:
    return {
        CouponProblem.EXPIRED: _("This promo code has expired."),
        CouponProblem.USED_UP: _("This promo code has been used up."),
        CouponProblem.NOT_THIS_PRODUCT: _("This promo code is not valid for this course."),
    }.get(problem, _("There is no such promo code. Check the spelling and try again."))


@router.callback_query(PromoCB.filter())
async def on_promo(callback: CallbackQuery, callback_data: PromoCB, state: FSMContext) -> None:
    await state.set_state(PromoState.code)
    await state.update_data(k=callback_data.k, id=callback_data.id)
    await show(callback, _("Send me the promo code as a message."))


@router.message(StateFilter(PromoState.code))
async def on_promo_code(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    data = await state.get_data()
    await state.clear()
    text = (message.text or "").strip()
    if not text or text.startswith("/"):
        await message.answer(_("Promo code entry cancelled."))
        return
    kind = _kind(str(data.get("k", "")))
    product_id = int(data.get("id", 0) or 0)
    offer = (
        await make_offer(session, user.id, kind, product_id, settings, now=now)
        if kind
        else OfferProblem.UNAVAILABLE
    )
    if isinstance(offer, OfferProblem):
        await message.answer(offer_problem_text(offer))
        return
    coupon = await coupons_service.find_code(session, text)
    problem = await coupons_service.problem_for(session, coupon, offer.product, user.id, now)
    if problem is not None or coupon is None:
        await message.answer(coupon_problem_text(problem or CouponProblem.UNKNOWN))
        return
    offer = await make_offer(
        session, user.id, offer.product.kind, product_id, settings, coupon, now
    )
    if isinstance(offer, OfferProblem):
        await message.answer(offer_problem_text(offer))
        return
    if offer.free:
        try:
            await claim_free(session, user.id, offer, now)
        except CouponUsedUp:
            await message.answer(coupon_problem_text(CouponProblem.USED_UP))
            return
        notifier = Notifier(bot, sessionmaker, settings, scheduler)
        await _tell_free(session, after_commit, notifier, user.id, offer.product.title, now)
        return
    if not any(q.discounted for q in offer.quotes):
        await message.answer(_("This promo code does not lower any price of this course."))
        return
    locale = current_locale()
    quotes = [(q.method, q.amount, q.currency) for q in offer.quotes]
    await message.answer(
        choose_text(offer, locale),
        reply_markup=methods_keyboard(
            offer.product.kind,
            product_id,
            quotes,
            coupon.id,
            locale,
            coupons_service.coupon_tag(_secret(settings), user.id, coupon.id),
        ),
    )


# --- Telegram's side of the payment ----------------------------------------------------


@router.pre_checkout_query()
async def on_pre_checkout(
    query: PreCheckoutQuery, session: AsyncSession, settings: Settings, clock: Clock
) -> None:
    for delay in (*UNKNOWN_ORDER_RETRIES, None):
        refusal = await check_pre_checkout(
            session,
            payload=query.invoice_payload,
            user_id=query.from_user.id,
            currency=query.currency,
            total_amount=query.total_amount,
            settings=settings,
            now=clock.now(),
        )
        if refusal != Refusal.UNKNOWN_ORDER or delay is None:
            break
        # The invoice can reach a fast payer before the update that created its order has
        # committed (PostgreSQL, concurrent updates): look again, still far within 10 s.
        await asyncio.sleep(delay)
    if refusal is None:
        await query.answer(ok=True)
    else:
        log.info("pre-checkout refused: %s", refusal)
        await query.answer(ok=False, error_message=refusal_text(refusal))


async def _is_successful_payment(message: Message) -> bool:
    # Async on purpose: aiogram runs sync (magic) filters in a thread.
    return message.successful_payment is not None


@router.message(_is_successful_payment)
async def on_successful_payment(
    message: Message,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    search: CatalogSearch,
    clock: Clock,
    i18n: I18n,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    """Book first, then speak: the booking commits with the update (the DB middleware),
    and only then is the learner told, so no failed send can undo a paid order."""
    paid = message.successful_payment
    assert paid is not None
    now = clock.now()
    method = PaymentMethod.STARS if paid.currency.upper() == STARS else PaymentMethod.CARD
    result = await record_payment(
        session,
        payload=paid.invoice_payload,
        payer_id=user.id,
        method=method,
        currency=paid.currency,
        amount=paid.total_amount,
        settings=settings,
        telegram_charge_id=paid.telegram_payment_charge_id,
        provider_charge_id=paid.provider_payment_charge_id or None,
        raw=paid.model_dump(mode="json", exclude_none=True),
        now=now,
    )
    if result.outcome == Outcome.DUPLICATE:
        return  # a redelivered update: the receipt is already sent or queued
    notifier = Notifier(bot, sessionmaker, settings, scheduler)
    locale = current_locale()
    if result.outcome == Outcome.CREDITED and result.product_kind == ProductKind.PROMOTION:
        from bot.handlers.promote import topup_receipt

        text, markup = await topup_receipt(session, result, locale)
        notice = await notifier.queue(session, user.id, text, markup, now)
        after_commit.append(lambda: notifier.send(notice))
        return
    if result.outcome == Outcome.CREDITED and result.product_kind == ProductKind.QUESTION:
        from bot.handlers.qa import paid_receipt

        text, queued = await paid_receipt(session, result, i18n, settings, now)
        receipt = await notifier.queue(session, user.id, text, None, now)
        # The learner's receipt first, then the question reaches the creator.
        for notice in [receipt, *queued]:
            after_commit.append(lambda notice=notice: notifier.send(notice))  # type: ignore[misc]
        return
    if result.outcome == Outcome.CREDITED:
        # What to learn next, under a course receipt: the purchase already counts.
        suggestions = (
            await suggestion_rows(session, user.id, search, language=list_language(user))
            if result.product_kind == ProductKind.COURSE
            else []
        )
        # A gift's link needs the bot's username, which may take a Telegram call: that
        # waits for the commit. Until then the receipt holds the /start form of it.
        gift_start = f"g_{result.gift_token}" if result.gift_token else None
        provisional = f"/start {gift_start}" if gift_start else None
        markup = receipt_keyboard(suggestions)
        text = receipt_text(result, method, locale, provisional)
        # Queued in the booking's transaction: it commits (or not) with the sale.
        notice = await notifier.queue(session, user.id, text, markup, now)
        if gift_start is None:
            after_commit.append(lambda: notifier.send(notice))
            return

        async def link_then_send() -> None:
            from bot.handlers.growth import bot_link

            link = await bot_link(bot, gift_start)
            final = notice
            if link != provisional:
                with i18n.context(), i18n.use_locale(locale):
                    words = outgoing(receipt_text(result, method, locale, link), markup)
                final = await notices.rewrite(sessionmaker, notice, words)
            await notifier.send(final)

        after_commit.append(link_then_send)
        return

    async def refund_then_tell() -> None:
        refund = await _auto_refund(notifier, result, method)
        with i18n.context(), i18n.use_locale(locale):
            text = auto_refund_text(result, refund, locale)
        async with sessionmaker() as tell:
            notice = await notifier.queue(tell, result.user_id, text, None, clock.now())
            await tell.commit()
        await notifier.send(notice)

    # The money is booked as received (or, for an unknown order, there is nothing to
    # book): the refund is a call to Telegram or Stripe and runs only after the commit.
    after_commit.append(refund_then_tell)


class Notifier:
    """Receipts and refund notes: queued with what they report, sent after the commit
    (bot.scheduler.notices); a failed send is the scheduler's to retry."""

    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        scheduler: Scheduler,
    ) -> None:
        self.bot = bot
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.scheduler = scheduler

    async def queue(
        self,
        session: AsyncSession,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None,
        now: datetime,
    ) -> notices.Notice:
        return await notices.queue(
            session, chat_id, outgoing(text, markup), now=now, lease=self.settings.scheduler_lease
        )

    async def send(self, notice: notices.Notice) -> None:
        await notices.send_now(
            self.sessionmaker,
            TelegramSender(self.bot),
            notice,
            now=self.scheduler.clock.now,
            wake=self.scheduler.wake,
        )


async def _auto_refund(
    notifier: Notifier, result: PaymentResult, method: str
) -> RefundResult | None:
    """Give back a payment that bought nothing, in a transaction of its own."""
    bot, settings = notifier.bot, notifier.settings
    refund: RefundResult | None = None
    if result.outcome == Outcome.REFUND_DUE and result.payment_id is not None:
        async with notifier.sessionmaker() as session:
            payment = await session.get(Payment, result.payment_id)
            if payment is not None:
                refund = await refund_payment(
                    session,
                    payment,
                    gateways(bot, settings),
                    settings,
                    actor_creator_id=None,
                    now=notifier.scheduler.clock.now(),
                )
            await session.commit()
    elif result.outcome == Outcome.UNKNOWN_ORDER:
        refund = await _refund_unrecorded(bot, settings, result, method)
    if refund is None or refund.status not in (RefundStatus.DONE, RefundStatus.SYNCED):
        log.error(
            "payment %s (order %s) needs a manual refund",
            result.payment_id,
            result.order_ref,
        )
    return refund


class _RefundedElsewhere:
    """A provider whose refund has already happened (Telegram told us it did)."""

    async def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        raise AlreadyRefunded("refunded outside the bot")

    async def star_transactions(self, offset: int, limit: int) -> list[StarTxn]:
        return []

    async def refund(self, charge_id: str, idempotency_key: str | None = None) -> str:
        raise AlreadyRefunded("refunded outside the bot")


async def _is_refunded_payment(message: Message) -> bool:
    return message.refunded_payment is not None


@router.message(_is_refunded_payment)
async def on_refunded_payment(
    message: Message, session: AsyncSession, settings: Settings, clock: Clock
) -> None:
    """Telegram's note that a payment was refunded. Ours are booked already; one refunded
    elsewhere (e.g. by Telegram support) is booked now, and access ends with it."""
    refunded = message.refunded_payment
    assert refunded is not None
    payment = await session.scalar(
        select(Payment).where(
            Payment.telegram_payment_charge_id == refunded.telegram_payment_charge_id
        )
    )
    if payment is None or payment.refunded_at is not None:
        return
    elsewhere = _RefundedElsewhere()
    result = await refund_payment(
        session,
        payment,
        Gateways(stars=elsewhere, card=elsewhere),
        settings,
        actor_creator_id=None,
        now=clock.now(),
    )
    if result.status == RefundStatus.SYNCED:
        await message.answer(refunded_text(result, current_locale()))


async def _refund_unrecorded(
    bot: Bot, settings: Settings, result: PaymentResult, method: str
) -> RefundResult | None:
    """Money for an invoice we cannot find: nothing to credit, so give it back."""
    charge = result.charge_id or ""
    try:
        if method == PaymentMethod.STARS:
            await TelegramStars(bot).refund_star_payment(result.user_id, charge)
        else:
            gateway = stripe_gateway(settings)
            if gateway is None or not result.provider_charge_id:
                return None
            await gateway.refund(
                result.provider_charge_id, idempotency_key=f"refund-unknown-{charge}"
            )
    except AlreadyRefunded:
        return RefundResult(RefundStatus.SYNCED)
    except ProviderError:
        return None
    return RefundResult(RefundStatus.DONE)


# --- notifications from outside an update (web checkout, staff refunds) --------------------


async def tell_learner(
    bot: Bot, session: AsyncSession, i18n: I18n, settings: Settings, user_id: int, build
) -> None:  # type: ignore[no-untyped-def]
    """Send `build(locale)` to a learner in their own language; never raises."""
    learner = await session.get(User, user_id)
    locale = pick_locale(
        learner.language if learner else None,
        learner.language_code if learner else None,
        settings.default_language,
    )
    try:
        # Outside an update (the Stripe webhook) no i18n context is set yet.
        with i18n.context(), i18n.use_locale(locale):
            text, markup = build(locale)
        await bot.send_message(user_id, text, reply_markup=markup)
    except TelegramAPIError:
        log.warning("could not message learner %s", user_id, exc_info=True)


class WebNotifier:
    """The Stripe webhook's receipts and refund notes, in the learner's language, queued
    in the webhook's transaction and sent after it commits (bot.payments.web_checkout)."""

    def __init__(self, notifier: Notifier, i18n: I18n) -> None:
        self.notifier = notifier
        self.i18n = i18n

    async def queue(
        self,
        session: AsyncSession,
        result: PaymentResult,
        refund: RefundResult | None,
        now: datetime,
    ) -> notices.Notice | None:
        if not result.user_id:
            return None
        learner = await session.get(User, result.user_id)
        locale = pick_locale(
            learner.language if learner else None,
            learner.language_code if learner else None,
            self.notifier.settings.default_language,
        )
        # Outside an update no i18n context is set yet.
        with self.i18n.context(), self.i18n.use_locale(locale):
            if result.outcome == Outcome.CREDITED:
                text, markup = receipt_text(result, PaymentMethod.WEB, locale), receipt_keyboard()
            else:
                text, markup = auto_refund_text(result, refund, locale), None
            return await self.notifier.queue(session, result.user_id, text, markup, now)

    async def send(self, notice: notices.Notice) -> None:
        await self.notifier.send(notice)


def web_notifier(
    bot: Bot,
    sessionmaker: async_sessionmaker[AsyncSession],
    i18n: I18n,
    settings: Settings,
    scheduler: Scheduler,
) -> WebNotifier:
    return WebNotifier(Notifier(bot, sessionmaker, settings, scheduler), i18n)
