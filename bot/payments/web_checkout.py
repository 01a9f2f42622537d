"""Web checkout: a Stripe Checkout Session for learners who pay outside Telegram's UI,
and the webhook that credits it when Stripe says checkout.session.completed.

The webhook is idempotent by Stripe's event id (Payment.external_event_id) and by the
payment intent; it owns its transactions because it runs outside any Telegram update.
Book first, then speak: the payment commits first; a refund (a call to Stripe) runs in
a transaction of its own afterwards, and the learner's message is queued with what it
reports and sent after that commit (bot.scheduler.notices).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.models import Payment, PaymentMethod, utcnow
from bot.payments.checkout import Outcome, PaymentResult, record_payment
from bot.payments.gateways import AlreadyRefunded, Gateways, ProviderError
from bot.payments.orders import Offer, open_order
from bot.payments.refunds import RefundResult, RefundStatus, refund_payment
from bot.payments.stripe_api import BadSignature, CheckoutLink, StripeGateway, verify_event
from bot.scheduler.notices import Notice

log = logging.getLogger(__name__)

PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}


class Notifier(Protocol):
    """The learner's receipt or refund note (rendered by the handlers layer)."""

    async def queue(
        self,
        session: AsyncSession,
        result: PaymentResult,
        refund: RefundResult | None,
        now: datetime,
    ) -> Notice | None:
        """Persist the message in `session`'s transaction."""
        ...

    async def send(self, notice: Notice) -> None:
        """Send it after that transaction committed; never raises."""
        ...


def return_urls(settings: Settings, bot_username: str | None) -> tuple[str, str]:
    fallback = f"https://t.me/{bot_username}" if bot_username else "https://t.me"
    return (
        settings.stripe_checkout_success_url or fallback,
        settings.stripe_checkout_cancel_url or fallback,
    )


async def start_web_checkout(
    session: AsyncSession,
    user_id: int,
    offer: Offer,
    settings: Settings,
    stripe_gateway: StripeGateway,
    bot_username: str | None,
    now: datetime | None = None,
) -> CheckoutLink:
    order = await open_order(session, user_id, offer, PaymentMethod.WEB, settings, now)
    success, cancel = return_urls(settings, bot_username)
    return await stripe_gateway.create_checkout_session(
        order_ref=order.public_ref,
        title=offer.product.title,
        currency=order.currency,
        amount=order.amount_minor,
        success_url=success,
        cancel_url=cancel,
    )


async def handle_stripe_event(
    session: AsyncSession, event: dict[str, Any], settings: Settings, now: datetime | None = None
) -> PaymentResult | None:
    """Credit a completed checkout; other event types are acknowledged and ignored."""
    if event.get("type") not in PAID_EVENTS:
        return None
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("payment_status") != "paid":
        return None  # async methods complete later, with async_payment_succeeded
    ref = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("order_ref") or ""
    return await record_payment(
        session,
        payload=str(ref),
        payer_id=None,
        method=PaymentMethod.WEB,
        currency=str(obj.get("currency") or ""),
        amount=int(obj.get("amount_total") or 0),
        settings=settings,
        provider_charge_id=obj.get("payment_intent") or None,
        external_event_id=str(event.get("id") or "") or None,
        raw={"session": obj.get("id"), "event": event.get("type")},
        now=now or utcnow(),
    )


def stripe_webhook_handler(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    gateways: Gateways,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    secret = (
        settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else ""
    )

    async def handle(request: web.Request) -> web.Response:
        if not secret:
            return web.Response(status=503, text="webhook secret not configured")
        payload = await request.read()
        try:
            event = verify_event(payload, request.headers.get("Stripe-Signature"), secret)
        except BadSignature as exc:
            log.warning("rejected a Stripe webhook: %s", exc)
            return web.Response(status=400, text="bad signature")
        now = clock()
        notice: Notice | None = None
        async with sessionmaker() as session:
            result = await handle_stripe_event(session, event, settings, now)
            if result is not None and result.outcome == Outcome.CREDITED and notifier:
                notice = await notifier.queue(session, result, None, now)
            await session.commit()
        if result is None or result.outcome == Outcome.DUPLICATE:
            return web.json_response({"received": True})
        if result.outcome == Outcome.UNKNOWN_ORDER:
            if not await _refund_unknown(event, result, gateways):
                # Nothing was recorded: Stripe's retry of this event tries the refund again.
                return web.Response(status=500, text="refund failed; retry later")
            return web.json_response({"received": True})
        if result.outcome == Outcome.REFUND_DUE:
            async with sessionmaker() as session:
                refund = await _refund_booked(session, result, gateways, settings, now)
                if notifier:
                    notice = await notifier.queue(session, result, refund, now)
                await session.commit()
        if notice is not None and notifier is not None:
            await notifier.send(notice)
        return web.json_response({"received": True})

    return handle


async def _refund_booked(
    session: AsyncSession,
    result: PaymentResult,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> RefundResult | None:
    payment = await session.get(Payment, result.payment_id) if result.payment_id else None
    refund = None
    if payment is not None:
        refund = await refund_payment(
            session, payment, gateways, settings, actor_creator_id=None, now=now
        )
    if refund is None or refund.status not in (RefundStatus.DONE, RefundStatus.SYNCED):
        log.error(
            "web payment %s (order %s) needs a manual refund", result.payment_id, result.order_ref
        )
    return refund


async def _refund_unknown(event: dict[str, Any], result: PaymentResult, gateways: Gateways) -> bool:
    """A signed, paid checkout we have no order for: the money goes back through Stripe."""
    obj = (event.get("data") or {}).get("object") or {}
    intent = result.provider_charge_id
    log.error(
        "Stripe event %s: paid checkout %s (%s %s) for no known order; refunding %s",
        event.get("id"),
        obj.get("id"),
        result.amount,
        result.currency,
        intent,
    )
    if gateways.card is None or not intent:
        log.error(
            "Stripe event %s: cannot refund (no Stripe client or payment intent)", event.get("id")
        )
        return True  # a retry would not help: staff refund it by hand
    try:
        await gateways.card.refund(intent, idempotency_key=f"refund-unknown-{intent}")
    except AlreadyRefunded:
        return True
    except ProviderError as exc:
        log.error("Stripe event %s: refund of %s failed: %s", event.get("id"), intent, exc.detail)
        return False
    return True
