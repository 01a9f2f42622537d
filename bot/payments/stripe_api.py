"""Stripe through the official `stripe` library: refunds, Checkout Sessions, webhooks.

The library is synchronous; every call runs in a worker thread so the event loop keeps
answering Telegram (pre_checkout_query has 10 seconds). STRIPE_API_BASE points the
client at another server: localstripe in tests, a recorded stub for Checkout.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import stripe

from bot.payments.gateways import AlreadyRefunded, ProviderError

ALREADY_REFUNDED_CODES = {"charge_already_refunded"}


@dataclass(frozen=True, slots=True)
class CheckoutLink:
    session_id: str
    url: str


class StripeGateway:
    def __init__(self, api_key: str, api_base: str = "") -> None:
        base: Any = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(api_key, base_addresses=base, max_network_retries=2)

    async def refund(self, charge_id: str, idempotency_key: str | None = None) -> str:
        params: Any = (
            {"payment_intent": charge_id} if charge_id.startswith("pi_") else {"charge": charge_id}
        )
        options: Any = {"idempotency_key": idempotency_key} if idempotency_key else None
        try:
            refund = await asyncio.to_thread(self.client.v1.refunds.create, params, options)
        except stripe.InvalidRequestError as exc:
            if exc.code in ALREADY_REFUNDED_CODES:
                raise AlreadyRefunded(exc.user_message or str(exc)) from exc
            raise ProviderError(exc.user_message or str(exc)) from exc
        except stripe.StripeError as exc:
            raise ProviderError(exc.user_message or type(exc).__name__) from exc
        return str(refund.id)

    async def create_checkout_session(
        self,
        *,
        order_ref: str,
        title: str,
        currency: str,
        amount: int,
        success_url: str,
        cancel_url: str,
    ) -> CheckoutLink:
        params: Any = {
            "mode": "payment",
            "client_reference_id": order_ref,
            "metadata": {"order_ref": order_ref},
            "payment_intent_data": {"metadata": {"order_ref": order_ref}},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount,
                        "product_data": {"name": title[:250] or "Course"},
                    },
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        try:
            session = await asyncio.to_thread(
                self.client.v1.checkout.sessions.create,
                params,
                {"idempotency_key": f"checkout-{order_ref}"},
            )
        except stripe.StripeError as exc:
            raise ProviderError(exc.user_message or type(exc).__name__) from exc
        if not session.url:
            raise ProviderError("Stripe returned no checkout URL")
        return CheckoutLink(session_id=str(session.id), url=str(session.url))


class BadSignature(Exception):
    pass


def verify_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event as a plain dict, after checking Stripe's signature (and its age)."""
    if not signature:
        raise BadSignature("missing Stripe-Signature")
    try:
        stripe.Webhook.construct_event(payload, signature, secret)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise BadSignature(str(exc)) from exc
    event: dict[str, Any] = json.loads(payload)
    return event
