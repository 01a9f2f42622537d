"""Book first, then speak: a successful_payment is committed — payment, order, entitlement,
ledger, funnel event — before the learner is told; a receipt or refund note that cannot
be sent is retried by the scheduler or dropped, and never undoes the booking. Also: a
payment for another amount than the order asks is refunded, never credited; a plan
purchase gets a plan receipt; reconcile-stars finds a payment without its sale."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import RefundStarPayment, SendInvoice, SendMessage
from aiogram.types import StarTransaction, TransactionPartnerUser
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.config import Settings
from bot.keyboards.callbacks import BuyCB
from bot.models import (
    Entitlement,
    Event,
    EventKind,
    Job,
    JobStatus,
    LedgerEntry,
    Order,
    OrderStatus,
    Payment,
    Plan,
)
from bot.payments.checkout import Outcome, RefundReason, record_payment
from bot.payments.orders import Offer, make_offer, open_order
from bot.payments.reconcile import reconcile_stars, unbooked_payments
from bot.scheduler import notices
from bot.services.users import TelegramProfile, upsert_user
from bot.telegram.stars import TelegramStars
from tests.support.payments import (
    PayRecordingSession,
    make_course,
    make_creator,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

ANN = tg(1001, "Ann")
SORRY = "something went wrong"


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


async def stars_invoice(harness: Harness, db: AsyncSession) -> str:
    _, course_id = await make_course(db)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("Telegram Stars", ANN)
    return harness.session.of_type(SendInvoice)[-1].payload


def said(harness: Harness, words: str) -> list[str]:
    return [t for t in harness.session.texts() if words in t]


async def assert_sold(db: AsyncSession, ref: str) -> None:
    """The whole sale is in the books: paid order, credited payment, access, ledger, event."""
    db.expire_all()
    order = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert order is not None and order.status == OrderStatus.PAID
    payment = await db.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment is not None and payment.raw.get("credited") is True
    ent = await db.scalar(select(Entitlement).where(Entitlement.source_order_id == order.id))
    assert ent is not None and ent.revoked_at is None
    sales = await db.scalar(
        select(func.count()).select_from(LedgerEntry).where(LedgerEntry.payment_id == payment.id)
    )
    assert sales == 1
    paid = await db.scalar(
        select(func.count()).select_from(Event).where(Event.kind == EventKind.PAID)
    )
    assert paid == 1
    assert await unbooked_payments(db) == []


def failure(kind: str) -> TelegramAPIError:
    method = SendMessage(chat_id=ANN.id, text="…")
    if kind == "429":
        return TelegramRetryAfter(method, "Too Many Requests: retry after 1", retry_after=1)
    if kind == "500":
        return TelegramServerError(method, "Internal Server Error")
    return TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")


async def notice_jobs(db: AsyncSession) -> list[Job]:
    db.expire_all()
    return list(await db.scalars(select(Job).where(Job.kind == notices.KIND).order_by(Job.id)))


@pytest.mark.parametrize("error", ["429", "500", "403"])
async def test_a_receipt_that_cannot_be_sent_never_undoes_the_sale(
    app: App, harness: Harness, db: AsyncSession, error: str
) -> None:
    ref = await stars_invoice(harness, db)
    harness.session.clear()
    harness.session.add_result(failure(error))  # the receipt is the first thing sent
    update = successful_payment_update(ANN, ref, "XTR", 500, "charge-1")
    await harness.feed(update)

    await assert_sold(db, ref)
    assert not said(harness, SORRY)
    [job] = await notice_jobs(db)
    if error == "403":
        # The learner blocked the bot: dropped with a log line, the sale stays.
        assert job.status == JobStatus.DONE and "dropped" in (job.last_error or "")
        await app.scheduler.drain()
        assert len(said(harness, "Payment received")) == 1  # only the failed attempt
        return
    assert job.status == JobStatus.PENDING
    # Telegram redelivers nothing new: the same update is a duplicate, the sale stays one.
    await harness.feed(update)
    await assert_sold(db, ref)
    if error == "429":
        await asyncio.sleep(1.1)  # retry_after
    await app.scheduler.drain()
    receipts = said(harness, "Payment received")
    assert len(receipts) == 2 and ref in receipts[-1]  # the failed try, then the retry
    [job] = await notice_jobs(db)
    assert job.status == JobStatus.DONE


async def test_a_receipt_sent_at_once_leaves_no_work_for_the_scheduler(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    ref = await stars_invoice(harness, db)
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "charge-1"))
    await assert_sold(db, ref)
    assert len(said(harness, "Payment received")) == 1
    [job] = await notice_jobs(db)
    assert job.status == JobStatus.DONE
    assert await app.scheduler.drain() == 0
    assert len(said(harness, "Payment received")) == 1


async def test_a_refund_note_that_cannot_be_sent_keeps_the_refund(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    ref = await stars_invoice(harness, db)
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "charge-1"))
    harness.session.clear()
    # The same invoice paid a second time: refunded; the note fails with a 500.
    harness.session.add_result(True)  # refundStarPayment
    harness.session.add_result(failure("500"))
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "charge-2"))
    assert [r.telegram_payment_charge_id for r in harness.session.of_type(RefundStarPayment)] == [
        "charge-2"
    ]
    db.expire_all()
    second = await db.scalar(
        select(Payment).where(Payment.telegram_payment_charge_id == "charge-2")
    )
    assert second is not None and second.refunded_at is not None
    assert await unbooked_payments(db) == []
    assert len(said(harness, "We refunded it")) == 1  # the failed try
    await app.scheduler.drain()
    assert len(said(harness, "We refunded it")) == 2


async def test_a_payment_row_never_commits_without_its_sale(
    db: AsyncSession, settings: Settings
) -> None:
    """SQLite: the payment's SAVEPOINT used to commit on its own when nothing but reads
    came before it, so a rolled-back booking left a payment row with no sale."""
    _, course_id = await make_course(db)
    await upsert_user(db, TelegramProfile(id=ANN.id, first_name="Ann"))
    offer = await make_offer(db, ANN.id, "course", course_id, settings)
    assert isinstance(offer, Offer)
    ref = (await open_order(db, ANN.id, offer, "stars", settings)).public_ref
    await db.commit()
    await db.close()

    result = await record_payment(
        db,
        payload=ref,
        payer_id=ANN.id,
        method="stars",
        currency="XTR",
        amount=500,
        settings=settings,
        telegram_charge_id="charge-1",
    )
    assert result.outcome == Outcome.CREDITED
    await db.rollback()  # the process died before the commit
    assert await db.scalar(select(func.count()).select_from(Payment)) == 0


async def test_a_payment_for_another_amount_is_refunded_not_credited(
    harness: Harness, db: AsyncSession
) -> None:
    ref = await stars_invoice(harness, db)
    harness.session.clear()
    # Telegram reports 400 Stars taken for an order asking 500.
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 400, "charge-low"))
    [refund] = harness.session.of_type(RefundStarPayment)
    assert refund.telegram_payment_charge_id == "charge-low"
    assert said(harness, "not what the order") and said(harness, "We refunded it")
    assert not said(harness, "Payment received")
    db.expire_all()
    order = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert order is not None
    assert (order.status, order.amount_minor, order.currency) == (
        OrderStatus.PENDING,
        500,
        "XTR",
    )
    assert await db.scalar(select(func.count()).select_from(Entitlement)) == 0
    payment = await db.scalar(select(Payment))
    assert payment is not None and payment.amount_minor == 400
    assert payment.refunded_at is not None
    # Received and given back: the ledger nets to zero.
    assert await db.scalar(select(func.sum(LedgerEntry.gross_minor))) == 0
    # Another currency is no better.
    await harness.feed(successful_payment_update(ANN, ref, "USD", 500, "charge-usd", "ch_1"))
    db.expire_all()
    assert await db.scalar(select(func.count()).select_from(Entitlement)) == 0


async def test_amount_differs_is_the_reason(db: AsyncSession, settings: Settings) -> None:
    _, course_id = await make_course(db)
    await upsert_user(db, TelegramProfile(id=ANN.id, first_name="Ann"))
    offer = await make_offer(db, ANN.id, "course", course_id, settings)
    assert isinstance(offer, Offer)
    ref = (await open_order(db, ANN.id, offer, "stars", settings)).public_ref
    result = await record_payment(
        db,
        payload=ref,
        payer_id=ANN.id,
        method="stars",
        currency="XTR",
        amount=1,
        settings=settings,
        telegram_charge_id="charge-1",
    )
    assert (result.outcome, result.reason) == (Outcome.REFUND_DUE, RefundReason.AMOUNT_DIFFERS)


async def test_a_plan_purchase_gets_a_plan_receipt(
    harness: Harness, db: AsyncSession, settings: Settings
) -> None:
    creator_id = await make_creator(db)
    plan = Plan(
        creator_id=creator_id,
        title="Club pass",
        stars_price=100,
        accepts_card=False,
        period_days=30,
        published=True,
    )
    db.add(plan)
    await upsert_user(db, TelegramProfile(id=ANN.id, first_name="Ann"))
    await db.flush()
    offer = await make_offer(db, ANN.id, "plan", plan.id, settings)
    assert isinstance(offer, Offer)
    ref = (await open_order(db, ANN.id, offer, "stars", settings)).public_ref
    await db.commit()

    await harness.feed(successful_payment_update(ANN, ref, "XTR", 100, "charge-plan"))
    [receipt] = said(harness, "Payment received")
    assert "Club pass" in receipt
    assert "invite link" in receipt and "/subscriptions" in receipt
    assert "Lessons arrive" not in receipt


async def test_reconcile_reports_a_payment_without_its_sale(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    ref = await stars_invoice(harness, db)
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "charge-1"))
    assert await unbooked_payments(db) == []
    payment = await db.scalar(select(Payment))
    assert payment is not None
    # What the SAVEPOINT bug left behind: a payment row without its ledger and access.
    await db.execute(LedgerEntry.__table__.delete())
    await db.execute(Entitlement.__table__.delete())
    await db.commit()
    lines = await unbooked_payments(db)
    assert len(lines) == 2
    assert lines[0].startswith("NO LEDGER ROW: payment") and "charge-1" in lines[0]
    assert lines[1].startswith("NO ENTITLEMENT: payment")
    payment.raw = {**payment.raw, "credited": False}
    await db.commit()
    lines = await unbooked_payments(db)
    assert lines[1].startswith("NOT CREDITED, NOT REFUNDED: payment")
    # Telegram and we agree on the Stars, yet reconcile-stars reports the gap.
    session = app.bot.session
    assert isinstance(session, PayRecordingSession)
    partner = TransactionPartnerUser(
        transaction_type="invoice_payment", user=ANN, invoice_payload=ref
    )
    session.star_transactions = [
        StarTransaction(id="charge-1", amount=500, date=datetime.now(UTC), source=partner)
    ]
    report = await reconcile_stars(db, TelegramStars(app.bot))
    assert not report.ok
    assert report.lines()[-1] == "GAPS FOUND" and lines[0] in report.lines()


async def test_a_booking_that_fails_is_not_answered_as_handled(
    app: App, harness: Harness, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error goes on out of the Dispatcher, so the update is not confirmed: a webhook
    answers 500 and Telegram sends it again (polling: tests/unit/test_polling.py). No
    apology: its "try again" would invite paying twice."""
    from bot.handlers import payments

    ref = await stars_invoice(harness, db)
    harness.session.clear()
    calls = 0

    async def fails_once(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        return await record_payment(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(payments, "record_payment", fails_once)
    update = successful_payment_update(ANN, ref, "XTR", 500, "charge-1")
    with pytest.raises(RuntimeError, match="went away"):
        await harness.feed(update)
    assert not said(harness, SORRY)

    await harness.feed(update)  # Telegram's redelivery
    await assert_sold(db, ref)
    assert said(harness, "Payment received")


@pytest.mark.parametrize("error", ["500", "403"])
async def test_a_free_grant_whose_message_fails_keeps_the_course(
    app: App, harness: Harness, db: AsyncSession, error: str
) -> None:
    """A free course (or a 100% code) grants access: its message is queued with the grant
    and sent after the commit, so a failed send never takes the course away again."""
    _, course_id = await make_course(db, title="Free intro", price_minor=0, stars=0)
    harness.session.clear()
    harness.session.add_result(True)  # answerCallbackQuery, after the commit
    harness.session.add_result(failure(error))  # then the "is yours, free" message
    await harness.press(BuyCB(id=course_id).pack(), ANN)

    db.expire_all()
    ent = await db.scalar(
        select(Entitlement).where(
            Entitlement.user_id == ANN.id, Entitlement.product_id == course_id
        )
    )
    assert ent is not None and ent.revoked_at is None
    assert not said(harness, SORRY)
    [job] = await notice_jobs(db)
    if error == "403":
        assert job.status == JobStatus.DONE and "dropped" in (job.last_error or "")
        return
    assert job.status == JobStatus.PENDING
    await app.scheduler.drain()
    assert len(said(harness, "is yours, free")) == 2  # the failed try, then the retry
    [job] = await notice_jobs(db)
    assert job.status == JobStatus.DONE
