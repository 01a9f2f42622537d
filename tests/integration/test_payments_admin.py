"""Creators and the admin: promo codes, refunds of Stars payments, revenue."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, RefundStarPayment, SendInvoice, SendMessage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import build_app
from bot.config import Settings
from bot.keyboards.callbacks import BuyCB
from bot.models import Coupon, Entitlement, LedgerEntry, Order, OrderStatus, Payment, User
from tests.support.payments import (
    ADMIN,
    CREATOR_USER,
    OTHER_CREATOR_USER,
    PayRecordingSession,
    make_course,
    pre_checkout_update,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness, settle

ANN = tg(1001, "Ann")
MAYA = tg(CREATOR_USER, "Maya")
OLEG = tg(OTHER_CREATOR_USER, "Oleg")
BOSS = tg(ADMIN, "Boss")


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


async def paid_stars_order(harness: Harness, course_id: int, charge: str = "st-1") -> str:
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("⭐ Telegram", ANN)  # the same in English and Chinese
    invoice = harness.session.of_type(SendInvoice)[-1]
    amount = invoice.prices[0].amount
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", amount))
    await harness.feed(successful_payment_update(ANN, invoice.payload, "XTR", amount, charge))
    return invoice.payload


async def test_promo_code_lowers_the_invoice_and_counts_a_use(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/coupon add spring25 25% uses=1 days=10", MAYA)
    assert "Promo code created" in harness.last_text() and "SPRING25" in harness.last_text()

    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("promo code", ANN)
    await harness.send("Spring25", ANN)
    text = harness.last_text()
    assert "SPRING25 applied" in text and "<s>$19.99</s> → $14.99" in text
    await harness.click("Telegram Stars", ANN)
    invoice = harness.session.of_type(SendInvoice)[-1]
    assert invoice.prices[0].amount == 375  # 500 Stars − 25 %
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", 375))
    await harness.feed(successful_payment_update(ANN, invoice.payload, "XTR", 375, "cp-1"))
    assert "Payment received" in harness.last_text()
    db.expire_all()
    coupon = await db.scalar(select(Coupon))
    assert coupon is not None and coupon.used_count == 1

    # Used up now: another learner is told so.
    _, other_course = await make_course(db, title="SQL basics")
    bob = tg(2002, "Bob")
    await harness.press(BuyCB(id=other_course).pack(), bob)
    await harness.click("promo code", bob)
    await harness.send("SPRING25", bob)
    assert "used up" in harness.last_text()


async def test_a_coupon_id_in_forged_callback_data_is_ignored(
    harness: Harness, db: AsyncSession
) -> None:
    from bot.keyboards.payments import PayCB

    _, course_id = await make_course(db)
    await harness.send("/coupon add SECRET 90%", MAYA)
    coupon_id = await db.scalar(select(Coupon.id))
    assert coupon_id is not None
    for tag in ("", "AAAAAAAA"):
        await harness.press(
            PayCB(k="course", id=course_id, m="stars", cp=coupon_id, t=tag).pack(), ANN
        )
        assert harness.session.of_type(SendInvoice)[-1].prices[0].amount == 500
        alert = harness.session.of_type(AnswerCallbackQuery)[-1]
        assert alert.show_alert and "full price" in (alert.text or "")
    # A tag made for Ann does not work for Bob either.
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("promo code", ANN)
    await harness.send("secret", ANN)
    stars_button = harness.button("⭐ Telegram")
    assert PayCB.unpack(stars_button).t
    await harness.press(stars_button, tg(2002, "Bob"))
    assert harness.session.of_type(SendInvoice)[-1].prices[0].amount == 500
    await harness.press(stars_button, ANN)
    assert harness.session.of_type(SendInvoice)[-1].prices[0].amount == 50


async def test_coupon_made_invalid_before_pre_checkout_is_refused(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await harness.send(f"/coupon add HALF 50% course={course_id}", MAYA)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("promo code", ANN)
    await harness.send("half", ANN)
    await harness.click("Card", ANN)
    invoice = harness.session.of_type(SendInvoice)[-1]
    # 999.5 off rounds half up to 1000 off.
    assert (invoice.currency, invoice.prices[0].amount) == ("USD", 999)
    await harness.send("/coupon off HALF", MAYA)
    assert "is off" in harness.last_text()
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "USD", 999))
    from aiogram.methods import AnswerPreCheckoutQuery

    answer = harness.session.of_type(AnswerPreCheckoutQuery)[-1]
    assert answer.ok is False and "promo code" in (answer.error_message or "")


async def test_hundred_percent_coupon_grants_access_without_invoice(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/coupon add GIFT 100%", MAYA)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("promo code", ANN)
    await harness.send("gift", ANN)
    assert "is yours, free" in harness.last_text()
    assert harness.session.of_type(SendInvoice) == []
    db.expire_all()
    order = await db.scalar(select(Order))
    assert order is not None and (order.method, order.status, order.amount_minor) == (
        "free",
        OrderStatus.PAID,
        0,
    )
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.source_order_id == order.id
    coupon = await db.scalar(select(Coupon))
    assert coupon is not None and coupon.used_count == 1


async def test_coupon_commands_are_for_creators_and_validated(
    harness: Harness, db: AsyncSession
) -> None:
    await make_course(db)
    await harness.send("/coupon add X1X 10%", ANN)
    assert "for course creators" in harness.last_text()
    await harness.send("/coupon add OKAY 150%", MAYA)
    assert "between 1 and 100" in harness.last_text()
    await harness.send("/coupon add FIVE 5.001USD", MAYA)
    assert "20% or as an amount" in harness.last_text()
    await harness.send("/coupon add OTHER 10% course=999", MAYA)
    assert "No such course" in harness.last_text()
    await harness.send("/coupon add FIVE 5USD", MAYA)
    await harness.send("/coupon add FIVE 5USD", MAYA)
    assert "already taken" in harness.last_text()
    await harness.send("/coupon list", MAYA)
    assert "FIVE" in harness.last_text() and "$5.00" in harness.last_text()


async def test_creator_refunds_a_stars_sale_and_the_learner_is_told(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    ref = await paid_stars_order(harness, course_id)
    ann = await db.get(User, ANN.id)
    assert ann is not None
    ann.language = "zh"  # Ann reads Chinese; Maya gets English
    await db.commit()

    # Another creator cannot see or refund it.
    await make_course(db, creator_user=OTHER_CREATOR_USER, title="Other")
    await harness.send(f"/refund {ref}", OLEG)
    assert "No payment found" in harness.last_text()
    assert harness.session.of_type(RefundStarPayment) == []

    harness.session.clear()
    await harness.send(f"/refund {ref}", MAYA)
    call = harness.session.of_type(RefundStarPayment)[-1]
    assert (call.user_id, call.telegram_payment_charge_id) == (ANN.id, "st-1")
    sent = harness.session.of_type(SendMessage)
    to_maya = [m.text for m in sent if m.chat_id == MAYA.id]
    to_ann = [m.text for m in sent if m.chat_id == ANN.id]
    assert any("Refunded payment" in t and "revoked" in t for t in to_maya)
    assert any("已退款" in t and "访问已结束" in t for t in to_ann), to_ann

    db.expire_all()
    order = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert order is not None and order.status == OrderStatus.REFUNDED
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.revoked_at is not None
    rows = sorted(
        (e.kind, e.gross_minor, e.fee_minor, e.net_minor)
        for e in await db.scalars(select(LedgerEntry))
    )
    assert rows == [("refund", -500, -50, -450), ("sale", 500, 50, 450)]

    # Twice is harmless.
    await harness.send(f"/refund {ref}", MAYA)
    assert "already refunded" in harness.last_text()
    assert len(harness.session.of_type(RefundStarPayment)) == 1

    # And the learner can buy again.
    await paid_stars_order(harness, course_id, charge="st-2")
    db.expire_all()
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.revoked_at is None


async def test_charge_already_refunded_and_provider_errors(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    ref = await paid_stars_order(harness, course_id)
    payment_id = await db.scalar(select(Payment.id))

    harness.session.add_result(
        TelegramBadRequest(method=None, message="Bad Request: PAYMENT_PROVIDER_ERROR")  # type: ignore[arg-type]
    )
    await harness.send(f"/refund {payment_id}", BOSS)
    assert "refused the refund" in harness.last_text() and "Nothing was changed" in (
        harness.last_text()
    )
    db.expire_all()
    payment = await db.get(Payment, payment_id)
    assert payment is not None and payment.refunded_at is None

    harness.session.add_result(
        TelegramBadRequest(method=None, message="Bad Request: CHARGE_ALREADY_REFUNDED")  # type: ignore[arg-type]
    )
    await harness.send(f"/refund {ref}", BOSS)  # the admin may refund anyone's sale
    assert "CHARGE_ALREADY_REFUNDED" in harness.last_text() or any(
        "CHARGE_ALREADY_REFUNDED" in t for t in harness.session.texts()
    )
    db.expire_all()
    payment = await db.get(Payment, payment_id)
    assert payment is not None and payment.refunded_at is not None


async def test_sales_report_per_currency(harness: Harness, db: AsyncSession) -> None:
    _, course_id = await make_course(db)
    _, card_course = await make_course(db, title="Design", price_minor=1500, currency="JPY")
    await paid_stars_order(harness, course_id)
    await harness.press(BuyCB(id=card_course).pack(), ANN)
    await harness.click("Card", ANN)
    invoice = harness.session.of_type(SendInvoice)[-1]
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "JPY", 1500))
    await harness.feed(
        successful_payment_update(ANN, invoice.payload, "JPY", 1500, "card-1", "ch_1")
    )
    await harness.send("/sales", MAYA)
    text = harness.last_text()
    assert "JPY: 1 sale, 0 refunds — gross ¥1,500, fee ¥150, net ¥1,350" in text
    assert "XTR: 1 sale, 0 refunds — gross ⭐ 500, fee ⭐ 50, net ⭐ 450" in text
    await harness.send("/sales", OLEG)
    assert "for course creators" in harness.last_text()
    await harness.send("/sales", BOSS)
    assert "platform" in harness.last_text()
    assert await db.scalar(select(func.count()).select_from(LedgerEntry)) == 2


async def test_refund_made_outside_the_bot_is_booked_from_telegrams_notice(
    harness: Harness, db: AsyncSession
) -> None:
    from datetime import UTC, datetime

    from aiogram.types import Chat, Message, RefundedPayment, Update

    _, course_id = await make_course(db)
    ref = await paid_stars_order(harness, course_id)
    notice = Update(
        update_id=990_001,
        message=Message(
            message_id=990_001,
            date=datetime.now(UTC),
            chat=Chat(id=ANN.id, type="private"),
            from_user=ANN,
            refunded_payment=RefundedPayment(
                currency="XTR",
                total_amount=500,
                invoice_payload=ref,
                telegram_payment_charge_id="st-1",
            ),
        ),
    )
    harness.session.clear()
    await harness.feed(notice)
    assert harness.session.of_type(RefundStarPayment) == []  # nothing to call: it is done
    assert "was refunded" in harness.last_text()
    db.expire_all()
    ent = await db.scalar(select(Entitlement))
    assert ent is not None and ent.revoked_at is not None
    assert await db.scalar(select(func.sum(LedgerEntry.gross_minor))) == 0
    # Telegram repeats itself, or the refund was ours: nothing more happens, no reply.
    harness.session.clear()
    await harness.feed(notice.model_copy(update={"update_id": 990_002}))
    assert harness.session.of_type(SendMessage) == []


async def test_a_codes_days_count_from_the_bots_clock(
    settings: Settings, engine: AsyncEngine, db: AsyncSession
) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.scheduler.clock import ManualClock

    start = datetime(2031, 1, 10, 12, 0, tzinfo=UTC)
    app = build_app(
        settings, session=PayRecordingSession(), engine=engine, clock=ManualClock(start)
    )
    try:
        await make_course(db)
        await Harness(app).send("/coupon add WINTER 10% days=10", MAYA)
    finally:
        await settle(app)
    coupon = await db.scalar(select(Coupon))
    assert coupon is not None and coupon.expires_at is not None
    assert coupon.expires_at.replace(tzinfo=UTC) == start + timedelta(days=10)
