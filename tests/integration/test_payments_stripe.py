"""Stripe through the real `stripe` library: a card refund end to end against
localstripe, Stripe's error answers, Checkout Sessions against a recorded response, and
the webhook with real signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import stripe
from aiogram.methods import SendInvoice, SendMessage
from aiohttp import ClientSession, web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, add_stripe_webhook, build_app
from bot.config import Settings
from bot.keyboards.callbacks import BuyCB
from bot.models import Entitlement, LedgerEntry, Order, OrderStatus, Payment
from bot.payments.gateways import AlreadyRefunded, ProviderError
from bot.payments.orders import Offer, make_offer, open_order
from bot.payments.stripe_api import StripeGateway
from bot.services.users import TelegramProfile, upsert_user
from tests.support.payments import (
    CREATOR_USER,
    PayRecordingSession,
    make_course,
    pay_settings,
    pre_checkout_update,
    successful_payment_update,
    tg,
)
from tests.support.servers import free_port
from tests.support.updates import Harness, settle

ANN = tg(1001, "Ann")
MAYA = tg(CREATOR_USER, "Maya")
STRIPE_KEY = "sk_test_lyceum"
WEBHOOK_SECRET = "whsec_test_lyceum"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                request = urllib.request.Request(
                    f"{url}/v1/charges", headers={"Authorization": f"Bearer {STRIPE_KEY}"}
                )
                urllib.request.urlopen(request, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class StripeStub:
    """A local server answering like Stripe with recorded JSON, keeping what it got."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, Any]]]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        form = dict((await request.post()).items())
        self.requests.append((request.path, {k: str(v) for k, v in form.items()}))
        status, body = self.routes[request.path]
        return web.json_response(body, status=status)

    async def __aenter__(self) -> StripeStub:
        app = web.Application()
        for path in self.routes:
            app.router.add_post(path, self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


# Shapes recorded from Stripe's API (test mode), trimmed to the fields Stripe always sends.
RECORDED_CHECKOUT_SESSION: dict[str, Any] = {
    "id": "cs_test_a1b2c3d4e5",
    "object": "checkout.session",
    "amount_subtotal": 1999,
    "amount_total": 1999,
    "cancel_url": "https://t.me/lyceum_test_bot",
    "client_reference_id": None,
    "currency": "usd",
    "livemode": False,
    "metadata": {},
    "mode": "payment",
    "payment_intent": None,
    "payment_status": "unpaid",
    "status": "open",
    "success_url": "https://t.me/lyceum_test_bot",
    "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3d4e5#fidkdWxOYHwnPyd1blpxYHZxWjA0",
}
RECORDED_ALREADY_REFUNDED: dict[str, Any] = {
    "error": {
        "code": "charge_already_refunded",
        "doc_url": "https://stripe.com/docs/error-codes/charge-already-refunded",
        "message": "Charge ch_3Q0 has already been refunded.",
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_x",
        "type": "invalid_request_error",
    }
}
RECORDED_NO_SUCH_CHARGE: dict[str, Any] = {
    "error": {
        "code": "resource_missing",
        "message": "No such charge: 'ch_missing'",
        "param": "charge",
        "type": "invalid_request_error",
    }
}


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, made the documented way: HMAC-SHA256 of "t.payload"."""
    ts = int(time.time()) if timestamp is None else timestamp
    signed = f"{ts}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def checkout_completed(event_id: str, order_ref: str, amount: int, intent: str) -> bytes:
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": "checkout.session.completed",
        "livemode": False,
        "data": {
            "object": {
                **RECORDED_CHECKOUT_SESSION,
                "client_reference_id": order_ref,
                "metadata": {"order_ref": order_ref},
                "payment_intent": intent,
                "payment_status": "paid",
                "status": "complete",
                "amount_total": amount,
            }
        },
    }
    return json.dumps(event).encode()


def make_app(settings: Settings, engine: AsyncEngine) -> App:
    return build_app(settings, session=PayRecordingSession(), engine=engine)


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[App]:
    app = make_app(settings, engine)
    yield app
    await settle(app)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return pay_settings(
        database_url, stripe_secret_key=STRIPE_KEY, stripe_webhook_secret=WEBHOOK_SECRET
    )


async def test_card_refund_end_to_end_against_localstripe(
    localstripe: str, database_url: str, engine: AsyncEngine, db: AsyncSession
) -> None:
    settings = pay_settings(database_url, stripe_secret_key=STRIPE_KEY, stripe_api_base=localstripe)
    app = make_app(settings, engine)
    harness = Harness(app)
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": localstripe})
    # The charge Stripe made when Telegram's card form was paid.
    method = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    charge = client.v1.charges.create({"amount": 1999, "currency": "usd", "source": method.id})

    _, course_id = await make_course(db)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("Card", ANN)
    invoice = harness.session.of_type(SendInvoice)[-1]
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "USD", 1999))
    await harness.feed(
        successful_payment_update(ANN, invoice.payload, "USD", 1999, "tg-card-1", charge.id)
    )
    assert "Payment received" in harness.last_text()

    harness.session.clear()
    await harness.send(f"/refund {invoice.payload}", MAYA)
    refunds = client.v1.refunds.list({"charge": charge.id}).data
    assert [(r.amount, r.status) for r in refunds] == [(1999, "succeeded")]
    texts = {m.chat_id: m.text for m in harness.session.of_type(SendMessage)}
    assert "Refunded payment" in texts[MAYA.id]
    assert "$19.99" in texts[ANN.id] and "5–10 days" in texts[ANN.id]

    db.expire_all()
    order = await db.scalar(select(Order))
    assert order is not None and order.status == OrderStatus.REFUNDED
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.revoked_at is not None
    net = await db.scalar(select(func.sum(LedgerEntry.gross_minor)))
    assert net == 0
    await settle(app)


async def test_stripe_errors_become_clear_provider_errors() -> None:
    async with StripeStub(
        {"/v1/refunds": (400, RECORDED_ALREADY_REFUNDED)},
    ) as stub:
        with pytest.raises(AlreadyRefunded):
            await StripeGateway(STRIPE_KEY, stub.url).refund("ch_3Q0")
        assert stub.requests[0][1]["charge"] == "ch_3Q0"
    async with StripeStub({"/v1/refunds": (404, RECORDED_NO_SUCH_CHARGE)}) as stub:
        with pytest.raises(ProviderError) as info:
            await StripeGateway(STRIPE_KEY, stub.url).refund("pi_missing")
        assert not isinstance(info.value, AlreadyRefunded)
        assert "No such charge" in info.value.detail
        assert stub.requests[0][1]["payment_intent"] == "pi_missing"


async def test_web_checkout_session_link(
    database_url: str, engine: AsyncEngine, db: AsyncSession
) -> None:
    async with StripeStub({"/v1/checkout/sessions": (200, RECORDED_CHECKOUT_SESSION)}) as stub:
        settings = pay_settings(
            database_url, stripe_secret_key=STRIPE_KEY, stripe_api_base=stub.url
        )
        app = make_app(settings, engine)
        harness = Harness(app)
        _, course_id = await make_course(db)
        await harness.press(BuyCB(id=course_id).pack(), ANN)
        await harness.click("web page", ANN)
        markup = harness.last_markup()
        assert markup is not None
        assert markup.inline_keyboard[0][0].url == RECORDED_CHECKOUT_SESSION["url"]
        assert "Stripe" in harness.last_text()
        order = await db.scalar(select(Order))
        assert order is not None and order.method == "web" and order.status == "pending"
        path, form = stub.requests[0]
        assert path == "/v1/checkout/sessions"
        assert form["client_reference_id"] == order.public_ref
        assert form["mode"] == "payment"
        assert form["line_items[0][price_data][unit_amount]"] == "1999"
        assert form["line_items[0][price_data][currency]"] == "usd"
        await settle(app)


@pytest.fixture
async def webhook_url(app: App) -> AsyncIterator[str]:
    web_app = web.Application()
    add_stripe_webhook(app, web_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}{app.settings.stripe_webhook_path}"
    await runner.cleanup()


async def post(url: str, payload: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    async with ClientSession() as http, http.post(url, data=payload, headers=headers) as resp:
        return resp.status


async def test_webhook_credits_a_completed_checkout_once(
    app: App, webhook_url: str, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await upsert_user(db, TelegramProfile(id=ANN.id, first_name="Ann", language_code="en"))
    offer = await make_offer(db, ANN.id, "course", course_id, app.settings)
    assert isinstance(offer, Offer)
    order = await open_order(db, ANN.id, offer, "web", app.settings)
    ref = order.public_ref
    await db.commit()

    payload = checkout_completed("evt_1", ref, 1999, "pi_1")
    assert await post(webhook_url, payload, None) == 400
    assert await post(webhook_url, payload, stripe_signature(payload, "whsec_wrong")) == 400
    old = stripe_signature(payload, WEBHOOK_SECRET, int(time.time()) - 3600)
    assert await post(webhook_url, payload, old) == 400  # replayed: too old
    tampered = stripe_signature(payload.replace(b"1999", b"1"), WEBHOOK_SECRET)
    assert await post(webhook_url, payload, tampered) == 400
    for _ in range(2):  # Stripe retries deliveries
        assert await post(webhook_url, payload, stripe_signature(payload, WEBHOOK_SECRET)) == 200
    # Another event about the same payment (async_payment_succeeded) changes nothing.
    twin = checkout_completed("evt_2", ref, 1999, "pi_1").replace(
        b"checkout.session.completed", b"checkout.session.async_payment_succeeded"
    )
    assert await post(webhook_url, twin, stripe_signature(twin, WEBHOOK_SECRET)) == 200
    # Events the bot does not handle are acknowledged.
    other = json.dumps({"id": "evt_3", "type": "customer.created", "data": {}}).encode()
    assert await post(webhook_url, other, stripe_signature(other, WEBHOOK_SECRET)) == 200

    db.expire_all()
    payments = list(await db.scalars(select(Payment)))
    assert len(payments) == 1
    assert (payments[0].method, payments[0].external_event_id) == ("web", "evt_1")
    assert payments[0].provider_payment_charge_id == "pi_1"
    db.expire_all()
    paid = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert paid is not None and paid.status == OrderStatus.PAID
    assert await db.scalar(select(func.count()).select_from(Entitlement)) == 1
    receipts = [
        m
        for m in app.bot.session.of_type(SendMessage)  # type: ignore[attr-defined]
        if m.chat_id == ANN.id and "Payment received" in m.text
    ]
    assert len(receipts) == 1


RECORDED_REFUND: dict[str, Any] = {
    "id": "re_3Q0a1b2c3",
    "object": "refund",
    "amount": 1999,
    "charge": "ch_3Q0a1b2c3",
    "currency": "usd",
    "payment_intent": "pi_2",
    "status": "succeeded",
}


async def test_web_payment_for_an_owned_course_is_refunded_through_stripe(
    database_url: str, engine: AsyncEngine, db: AsyncSession
) -> None:
    async with StripeStub({"/v1/refunds": (200, RECORDED_REFUND)}) as stub:
        settings = pay_settings(
            database_url,
            stripe_secret_key=STRIPE_KEY,
            stripe_api_base=stub.url,
            stripe_webhook_secret=WEBHOOK_SECRET,
        )
        app = make_app(settings, engine)
        _, course_id = await make_course(db)
        await upsert_user(db, TelegramProfile(id=ANN.id, first_name="Ann", language_code="en"))
        offer = await make_offer(db, ANN.id, "course", course_id, settings)
        assert isinstance(offer, Offer)
        ref = (await open_order(db, ANN.id, offer, "web", settings)).public_ref
        # The same checkout opened in two browser tabs and paid in both.
        refs = [ref, ref]
        await db.commit()

        web_app = web.Application()
        add_stripe_webhook(app, web_app)
        runner = web.AppRunner(web_app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}{settings.stripe_webhook_path}"
        try:
            for n, ref in enumerate(refs, 1):
                body = checkout_completed(f"evt_{n}", ref, 1999, f"pi_{n}")
                assert await post(url, body, stripe_signature(body, WEBHOOK_SECRET)) == 200
        finally:
            await runner.cleanup()
            await settle(app)

        assert [form for _, form in stub.requests] == [{"payment_intent": "pi_2"}]
        texts = [m.text for m in app.bot.session.of_type(SendMessage)]  # type: ignore[attr-defined]
        assert any("Payment received" in t for t in texts)
        assert any("We refunded it" in t for t in texts)
        db.expire_all()
        payments = {p.provider_payment_charge_id: p for p in await db.scalars(select(Payment))}
        assert payments["pi_1"].refunded_at is None
        assert payments["pi_2"].refunded_at is not None
        assert await db.scalar(select(func.sum(LedgerEntry.gross_minor))) == 1999


async def paid_intent(client: stripe.StripeClient, amount: int) -> str:
    """A real payment intent in localstripe: the money a checkout took."""
    method = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    intent = client.v1.payment_intents.create(
        {"amount": amount, "currency": "usd", "payment_method": method.id, "confirm": True}
    )
    assert intent.status == "succeeded"
    return intent.id


@pytest.fixture
async def stripe_hook(
    localstripe: str, database_url: str, engine: AsyncEngine
) -> AsyncIterator[tuple[App, str]]:
    settings = pay_settings(
        database_url,
        stripe_secret_key=STRIPE_KEY,
        stripe_api_base=localstripe,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )
    app = make_app(settings, engine)
    web_app = web.Application()
    add_stripe_webhook(app, web_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app, f"http://127.0.0.1:{port}{settings.stripe_webhook_path}"
    finally:
        await runner.cleanup()
        await settle(app)


async def test_a_web_payment_for_less_than_the_order_is_refunded_not_credited(
    localstripe: str, stripe_hook: tuple[App, str], db: AsyncSession
) -> None:
    app, url = stripe_hook
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": localstripe})
    _, course_id = await make_course(db)
    await upsert_user(db, TelegramProfile(id=ANN.id, first_name="Ann", language_code="en"))
    offer = await make_offer(db, ANN.id, "course", course_id, app.settings)
    assert isinstance(offer, Offer)
    ref = (await open_order(db, ANN.id, offer, "web", app.settings)).public_ref
    await db.commit()

    # A signed event for the order's session, but 9.99 was charged for a 19.99 order.
    intent = await paid_intent(client, 999)
    body = checkout_completed("evt_low", ref, 999, intent)
    assert await post(url, body, stripe_signature(body, WEBHOOK_SECRET)) == 200

    refunds = client.v1.refunds.list({"payment_intent": intent}).data
    assert [(r.amount, r.status) for r in refunds] == [(999, "succeeded")]
    db.expire_all()
    order = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert order is not None
    assert (order.status, order.amount_minor) == (OrderStatus.PENDING, 1999)
    assert await db.scalar(select(func.count()).select_from(Entitlement)) == 0
    payment = await db.scalar(select(Payment))
    assert payment is not None and payment.amount_minor == 999
    assert payment.refunded_at is not None
    assert await db.scalar(select(func.sum(LedgerEntry.gross_minor))) == 0
    texts = [m.text for m in app.bot.session.of_type(SendMessage)]  # type: ignore[attr-defined]
    assert any("not what the order" in t and "We refunded it" in t for t in texts)
    assert not any("Payment received" in t for t in texts)


async def test_a_paid_checkout_for_no_known_order_is_refunded_and_logged(
    localstripe: str,
    stripe_hook: tuple[App, str],
    db: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, url = stripe_hook
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": localstripe})
    intent = await paid_intent(client, 1999)
    body = checkout_completed("evt_stray", "no-such-order", 1999, intent)
    # (A retry of the event refunds with the same idempotency key, which Stripe answers
    # with the first refund; localstripe ignores the key, so one delivery here.)
    assert await post(url, body, stripe_signature(body, WEBHOOK_SECRET)) == 200

    refunds = client.v1.refunds.list({"payment_intent": intent}).data
    assert [(r.amount, r.status) for r in refunds] == [(1999, "succeeded")]
    assert "evt_stray" in caplog.text and "no known order" in caplog.text
    assert await db.scalar(select(func.count()).select_from(Payment)) == 0
