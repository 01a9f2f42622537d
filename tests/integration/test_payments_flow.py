"""Buying through the real Dispatcher: Buy → method → invoice → pre-checkout →
successful_payment → receipt, checked in the database."""

from __future__ import annotations

import pytest
from aiogram.methods import (
    AnswerCallbackQuery,
    AnswerPreCheckoutQuery,
    CreateInvoiceLink,
    RefundStarPayment,
    SendInvoice,
    SendMessage,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.sources import Source, number
from bot.app import App
from bot.keyboards.callbacks import BuyCB, CourseCB
from bot.models import (
    Course,
    Entitlement,
    Event,
    EventKind,
    LedgerEntry,
    Order,
    OrderStatus,
    Payment,
)
from bot.services.recommendations import recommendations
from tests.support.payments import (
    make_course,
    pre_checkout_update,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

REC = number(Source.RECOMMEND)  # suggestion buttons say where the card was opened

ANN = tg(1001, "Ann")


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


async def count(db: AsyncSession, model: type) -> int:
    db.expire_all()
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


def last_invoice(harness: Harness) -> SendInvoice:
    invoices = harness.session.of_type(SendInvoice)
    assert invoices, "no invoice was sent"
    return invoices[-1]


async def buy(harness: Harness, course_id: int, label: str) -> SendInvoice:
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    assert "How would you like to pay?" in harness.last_text()
    await harness.click(label, ANN)
    return last_invoice(harness)


@pytest.mark.parametrize(
    ("label", "currency", "amount", "token", "provider_charge"),
    [
        ("Telegram Stars", "XTR", 500, "", ""),
        ("Card", "USD", 1999, "284685063:TEST:stripe-token", "ch_3Test"),
    ],
)
async def test_purchase_end_to_end_and_redelivery_credits_once(
    harness: Harness,
    db: AsyncSession,
    label: str,
    currency: str,
    amount: int,
    token: str,
    provider_charge: str,
) -> None:
    creator_id, course_id = await make_course(db)
    # The card shows a Buy button; both prices are shown.
    await harness.press(CourseCB(id=course_id).pack(), ANN)
    assert "$19.99" in harness.last_text() and "⭐ 500" in harness.last_text()
    harness.button("Buy")

    invoice = await buy(harness, course_id, label)
    assert (invoice.currency, invoice.prices[0].amount) == (currency, amount)
    assert invoice.provider_token == token
    assert len(invoice.payload.encode()) <= 128
    assert invoice.chat_id == ANN.id

    await harness.feed(pre_checkout_update(ANN, invoice.payload, currency, amount))
    answer = harness.session.of_type(AnswerPreCheckoutQuery)[-1]
    assert answer.ok is True

    update = successful_payment_update(
        ANN, invoice.payload, currency, amount, "tg-charge-1", provider_charge
    )
    for _ in range(3):
        await harness.feed(update)
    receipts = [t for t in harness.session.texts() if "Payment received" in t]
    assert len(receipts) == 1
    assert "Python from zero" in receipts[0] and invoice.payload in receipts[0]

    assert await count(db, Payment) == 1
    payment = await db.scalar(select(Payment))
    assert payment is not None
    assert payment.telegram_payment_charge_id == "tg-charge-1"
    assert payment.provider_payment_charge_id == (provider_charge or None)
    order = await db.scalar(select(Order).where(Order.public_ref == invoice.payload))
    assert order is not None and order.status == OrderStatus.PAID and order.paid_at is not None
    entries = list(await db.scalars(select(LedgerEntry)))
    assert [(e.kind, e.gross_minor, e.fee_minor, e.net_minor) for e in entries] == [
        ("sale", amount, round(amount / 10), amount - round(amount / 10))
    ]
    assert entries[0].creator_id == creator_id and entries[0].currency == currency
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.user_id == ANN.id and ent.product_id == course_id
    assert ent.revoked_at is None and ent.source_order_id == order.id
    paid_events = await db.scalar(
        select(func.count()).select_from(Event).where(Event.kind == EventKind.PAID)
    )
    assert paid_events == 1

    # Owned now: the card has no Buy button any more, and Buy says so.
    await harness.press(CourseCB(id=course_id).pack(), ANN)
    assert "You own this course" in harness.last_text()
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    alert = harness.session.of_type(AnswerCallbackQuery)[-1]
    assert alert.text is not None and "already have" in alert.text


async def test_price_change_between_invoice_and_pre_checkout_is_refused(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    invoice = await buy(harness, course_id, "Telegram Stars")
    course = await db.get(Course, course_id)
    assert course is not None
    course.stars_price = 650
    await db.commit()

    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", 500))
    answer = harness.session.of_type(AnswerPreCheckoutQuery)[-1]
    assert answer.ok is False
    assert answer.error_message is not None and "price changed" in answer.error_message

    # Buying again makes a new invoice at the new price; the old order is cancelled.
    invoice2 = await buy(harness, course_id, "Telegram Stars")
    assert invoice2.prices[0].amount == 650 and invoice2.payload != invoice.payload
    old = await db.scalar(select(Order).where(Order.public_ref == invoice.payload))
    assert old is not None and old.status == OrderStatus.CANCELLED


async def test_pre_checkout_refusals(
    harness: Harness, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.handlers import payments as payment_handlers

    monkeypatch.setattr(payment_handlers, "UNKNOWN_ORDER_RETRIES", (0.01,))
    _, course_id = await make_course(db)
    invoice = await buy(harness, course_id, "Telegram Stars")
    bob = tg(2002, "Bob")
    cases = [
        (pre_checkout_update(ANN, "forged-payload", "XTR", 500), "no longer valid"),
        (pre_checkout_update(bob, invoice.payload, "XTR", 500), "another account"),
        (pre_checkout_update(ANN, invoice.payload, "XTR", 1), "price changed"),
    ]
    for update, words in cases:
        await harness.feed(update)
        answer = harness.session.of_type(AnswerPreCheckoutQuery)[-1]
        assert answer.ok is False and words in (answer.error_message or "")
    course = await db.get(Course, course_id)
    assert course is not None
    course.published = False
    await db.commit()
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", 500))
    answer = harness.session.of_type(AnswerPreCheckoutQuery)[-1]
    assert answer.ok is False and "no longer on sale" in (answer.error_message or "")


async def test_old_invoice_paid_after_replacement_is_credited_and_a_second_is_refunded(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    old = await buy(harness, course_id, "Telegram Stars")
    course = await db.get(Course, course_id)
    assert course is not None
    course.stars_price = 650
    await db.commit()
    new = await buy(harness, course_id, "Telegram Stars")

    # The old invoice was paid anyway (pre-checkout passed before the change): credited.
    await harness.feed(successful_payment_update(ANN, old.payload, "XTR", 500, "c-old"))
    assert "Payment received" in harness.last_text()
    assert "credited it as paid" in harness.last_text()
    # Then the new one too: the learner owns the course already, so it goes back.
    await harness.feed(successful_payment_update(ANN, new.payload, "XTR", 650, "c-new"))
    refund = harness.session.of_type(RefundStarPayment)[-1]
    assert refund.telegram_payment_charge_id == "c-new" and refund.user_id == ANN.id
    assert "refunded it" in harness.last_text()

    db.expire_all()
    payments = {p.telegram_payment_charge_id: p for p in await db.scalars(select(Payment))}
    assert payments["c-old"].refunded_at is None
    assert payments["c-new"].refunded_at is not None
    ledger = sorted((e.kind, e.gross_minor) for e in await db.scalars(select(LedgerEntry)))
    assert ledger == [("refund", -650), ("sale", 500), ("sale", 650)]
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.revoked_at is None


async def test_concurrent_duplicate_loses_on_the_unique_index(
    harness: Harness, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-check misses a concurrent twin: the SAVEPOINT catches the IntegrityError."""
    from bot.payments import checkout

    _, course_id = await make_course(db)
    invoice = await buy(harness, course_id, "Telegram Stars")
    update = successful_payment_update(ANN, invoice.payload, "XTR", 500, "twin")
    await harness.feed(update)

    async def blind(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr(checkout, "_existing", blind)
    harness.session.clear()
    await harness.feed(update)
    assert harness.session.of_type(SendMessage) == []
    assert await count(db, Payment) == 1
    assert await count(db, LedgerEntry) == 1


async def test_concurrent_deliveries_credit_once(harness: Harness, db: AsyncSession) -> None:
    """Three copies at once (webhook retries racing): one payment, one grant, one receipt.
    Truly concurrent on PostgreSQL, where the losers hit the unique index."""
    import asyncio

    _, course_id = await make_course(db)
    invoice = await buy(harness, course_id, "Telegram Stars")
    update = successful_payment_update(ANN, invoice.payload, "XTR", 500, "race")
    harness.session.clear()
    await asyncio.gather(*(harness.feed(update) for _ in range(3)))
    assert len([t for t in harness.session.texts() if "Payment received" in t]) == 1
    assert await count(db, Payment) == 1
    assert await count(db, LedgerEntry) == 1
    assert await count(db, Entitlement) == 1


async def test_invoice_link_for_sharing(harness: Harness, db: AsyncSession) -> None:
    _, course_id = await make_course(db)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("payment link", ANN)
    link = harness.session.of_type(CreateInvoiceLink)[-1]
    assert link.currency == "XTR" and link.provider_token == ""
    assert link.prices[0].amount == 500
    assert "payment link" in harness.last_text()
    order = await db.scalar(select(Order).where(Order.public_ref == link.payload))
    assert order is not None and order.status == OrderStatus.PENDING


async def test_jpy_has_no_minor_units(harness: Harness, db: AsyncSession) -> None:
    _, course_id = await make_course(db, price_minor=1500, currency="JPY", stars=0)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    assert "¥1,500" in str(harness.last_markup())
    await harness.click("Card", ANN)
    invoice = last_invoice(harness)
    assert (invoice.currency, invoice.prices[0].amount) == ("JPY", 1500)


async def test_free_course_is_granted_without_invoice(harness: Harness, db: AsyncSession) -> None:
    _, course_id = await make_course(db, price_minor=0, stars=0)
    await harness.press(CourseCB(id=course_id).pack(), ANN)
    await harness.click("free", ANN)
    assert "is yours, free" in harness.last_text()
    assert harness.session.of_type(SendInvoice) == []
    order = await db.scalar(select(Order))
    assert order is not None and order.status == OrderStatus.PAID and order.amount_minor == 0
    assert await count(db, Entitlement) == 1


async def test_receipt_suggests_what_to_learn_next(harness: Harness, db: AsyncSession) -> None:
    _, course_id = await make_course(db)
    _, other_id = await make_course(db, title="Python for data analysis")
    # Suggestions never wait for a first fit (it would hold the payment's transaction).
    await recommendations(harness.app.search).fitted()
    invoice = await buy(harness, course_id, "Telegram Stars")
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", 500))
    await harness.feed(successful_payment_update(ANN, invoice.payload, "XTR", 500, "tg-s1", ""))
    assert "Payment received" in harness.last_text()
    markup = harness.last_markup()
    assert markup is not None
    suggested = [b.callback_data for row in markup.inline_keyboard for b in row]
    # The other course is suggested; the one just bought never is.
    assert CourseCB(id=other_id, src=REC).pack() in suggested
    assert CourseCB(id=course_id, src=REC).pack() not in suggested


async def test_live_rollups_equal_a_rebuild_from_the_raw_rows(
    harness: Harness, db: AsyncSession, app: App
) -> None:
    """The hooks (event flush, invoice, ledger, credit) write what stats-rebuild would."""
    from bot.analytics.rollups import rebuild
    from bot.models import FunnelProgress, MoneyDaily, ViewsDaily

    _creator_id, course_id = await make_course(db)
    await harness.send(f"/start c_{course_id}_b", ANN)  # a link in a broadcast
    await app.events.flush(app.sessionmaker)
    invoice = await buy(harness, course_id, "Telegram Stars")
    await app.events.flush(app.sessionmaker)
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", 500))
    await harness.feed(successful_payment_update(ANN, invoice.payload, "XTR", 500, "tg-1", ""))

    async def snapshot() -> tuple[object, ...]:
        db.expire_all()
        money = [
            (m.day, m.product_id, m.currency, m.source, m.sales, m.gross, m.fee, m.net)
            for m in await db.scalars(select(MoneyDaily).order_by(MoneyDaily.id))
        ]
        views = [
            (v.day, v.product_id, v.source, v.views, v.product_kind)
            for v in await db.scalars(select(ViewsDaily).order_by(ViewsDaily.id))
        ]
        funnel = [
            (
                f.product_id,
                f.user_id,
                f.viewed_at,
                f.buy_at,
                f.invoice_at,
                f.paid_at,
                f.source,
                f.paid_source,
            )
            for f in await db.scalars(select(FunnelProgress).order_by(FunnelProgress.id))
        ]
        return money, views, funnel

    live = await snapshot()
    money, views, funnel = live
    assert [m[3] for m in money] == ["bcast"] and [v[2:] for v in views] == [("bcast", 1, "course")]
    assert funnel and all(x is not None for x in funnel[0])
    order = await db.scalar(select(Order).where(Order.public_ref == invoice.payload))
    assert order is not None and order.source == "bcast"
    await rebuild(db)
    await db.commit()
    assert await snapshot() == live
