"""Web checkout: a Stripe Checkout Session for learners who pay outside Telegram's UI,
and the webhook that credits it when Stripe says checkout.session.completed.

The webhook is idempotent by Stripe's event id (Payment.external_event_id) and by the
payment intent; it owns its transaction because it runs outside any Telegram update.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.models import Payment, PaymentMethod, utcnow
from bot.payments.checkout import Outcome, PaymentResult, record_payment
from bot.payments.gateways import Gateways
from bot.payments.orders import Offer, open_order
from bot.payments.refunds import RefundResult, refund_payment
from bot.payments.stripe_api import BadSignature, CheckoutLink, StripeGateway, verify_event

log = logging.getLogger(__name__)

PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}

Notify = Callable[[PaymentResult, RefundResult | None], Awaitable[None]]


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
    notify: Notify | None = None,
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
        refund: RefundResult | None = None
        async with sessionmaker() as session:
            now = clock()
            result = await handle_stripe_event(session, event, settings, now)
            if result is not None and result.outcome == Outcome.REFUND_DUE:
                payment = await session.get(Payment, result.payment_id)
                if payment is not None:
                    refund = await refund_payment(
                        session, payment, gateways, settings, actor_creator_id=None, now=now
                    )
            await session.commit()
        # Tell the learner only after the books are safe; a failed message loses nothing.
        if result is not None and result.outcome != Outcome.DUPLICATE and notify is not None:
            try:
                await notify(result, refund)
            except Exception:
                log.warning("could not notify the learner about a web payment", exc_info=True)
        return web.json_response({"received": True})

    return handle
