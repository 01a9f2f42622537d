"""Q&A through the real dispatcher: free and paid questions, the creator's Reply and
Publish, the FAQ on the card, the 72-hour refund (exactly once, also across a crash
between Telegram's refund and our commit), and bad input that changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramServerError
from aiogram.methods import (
    AnswerCallbackQuery,
    AnswerPreCheckoutQuery,
    CopyMessage,
    RefundStarPayment,
    SendInvoice,
    SendMessage,
)
from aiogram.types import PhotoSize
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.handlers.qa import FaqCB, QaCB
from bot.keyboards.callbacks import CourseCB
from bot.models import (
    Job,
    JobStatus,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderStatus,
    Payment,
    ProductKind,
    Question,
    QuestionStatus,
)
from bot.payments import questions as paid
from bot.scheduler.clock import ManualClock
from bot.scheduler.errors import Transient
from bot.services import access
from bot.services.users import TelegramProfile, upsert_user
from tests.support.payments import (
    CREATOR_USER,
    make_course,
    make_creator,
    pre_checkout_update,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness, message_update

ANN = tg(1001, "Ann")
LI = tg(1002, "Li", language_code="zh")
MAYA = tg(CREATOR_USER, "Maya")
OTTO = tg(3003, "Otto")


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def world(db: AsyncSession, clock: ManualClock, *learners: int) -> int:
    """Maya's course, owned by `learners`; Otto is another creator."""
    _, course_id = await make_course(db)
    await make_creator(db, OTTO.id, "Otto")
    for uid in learners:
        await upsert_user(db, TelegramProfile(id=uid, first_name="L"))
        await access.grant(db, uid, ProductKind.COURSE, course_id, days=None, now=clock.now())
    await db.commit()
    return course_id


def photo_update(user, caption: str):  # type: ignore[no-untyped-def]
    photo = [PhotoSize(file_id="PHOTO1", file_unique_id="p1", width=90, height=90)]
    return message_update(None, user, photo=photo, caption=caption)


def said_to(h: Harness, user_id: int) -> list[str]:
    return [str(r.text) for r in h.session.of_type(SendMessage) if str(r.chat_id) == str(user_id)]


def alerts(h: Harness) -> list[str]:
    return [str(r.text) for r in h.session.of_type(AnswerCallbackQuery) if r.text]


async def questions(db: AsyncSession) -> list[Question]:
    db.expire_all()
    return list(await db.scalars(select(Question).order_by(Question.id)))


async def ledger(db: AsyncSession) -> list[tuple[str, int, int, int]]:
    rows = await db.scalars(select(LedgerEntry).order_by(LedgerEntry.id))
    return [(e.kind, e.gross_minor, e.fee_minor, e.net_minor) for e in rows]


async def test_a_free_question_its_answer_and_the_faq(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock, ANN.id, LI.id)
    # The card's Ask button, for an owner, starts the same step as /ask.
    await harness.press(CourseCB(id=course_id).pack(), ANN)
    await harness.click("Ask the creator", ANN)
    assert "Send your question" in said_to(harness, ANN.id)[-1]
    await harness.press(QaCB(a="a", id=course_id).pack(), OTTO)  # not a learner of it
    assert "Only learners" in alerts(harness)[-1]
    await harness.send("/cancel", ANN)
    await harness.send(f"/ask {course_id}", LI)
    assert "Send your question" not in said_to(harness, LI.id)[-1]  # Li reads Chinese
    await harness.feed(photo_update(LI, "Why does <this> fail?"))
    [q] = await questions(db)
    assert q.status == QuestionStatus.OPEN and q.content_type == "photo" and q.stars == 0
    copies = harness.session.of_type(CopyMessage)
    assert [(c.chat_id, c.from_chat_id) for c in copies] == [(MAYA.id, LI.id)]
    assert any(f"Question #{q.id}" in t for t in said_to(harness, MAYA.id))

    # Maya replies; her answer is copied to Li under a heading in Li's language.
    harness.session.clear()
    await harness.press(QaCB(a="r", id=q.id).pack(), MAYA)
    await harness.send("Because of the quoting.", MAYA)
    [q] = await questions(db)
    assert q.status == QuestionStatus.ANSWERED and q.answer_text == "Because of the quoting."
    [copy] = harness.session.of_type(CopyMessage)
    assert (copy.chat_id, copy.from_chat_id) == (LI.id, MAYA.id)
    heading = said_to(harness, LI.id)
    assert heading and "answered your question" not in heading[0]  # in Chinese

    # Not in the FAQ until published; then the card shows it to anyone.
    await harness.press(CourseCB(id=course_id).pack(), ANN)
    with pytest.raises(AssertionError):
        harness.button("FAQ")
    await harness.press(QaCB(a="p", id=q.id).pack(), MAYA)
    assert "Published" in alerts(harness)[-1]
    await harness.press(CourseCB(id=course_id).pack(), OTTO)
    await harness.click("FAQ (1)", OTTO)
    assert "Because of the quoting." in harness.last_text()
    assert "Why does &lt;this&gt; fail?" in harness.last_text()

    # A second answer is refused; nothing changes.
    await harness.press(QaCB(a="r", id=q.id).pack(), MAYA)
    assert "answered already" in alerts(harness)[-1]


async def pay_question(harness: Harness, db: AsyncSession, course_id: int) -> tuple[str, int]:
    await harness.send(f"/askprice {course_id} 50", MAYA)
    assert "50" in said_to(harness, MAYA.id)[-1]
    await harness.send(f"/ask {course_id}", ANN)
    assert "costs" in said_to(harness, ANN.id)[-1]
    await harness.send("How do I install it?", ANN)
    invoice = harness.session.of_type(SendInvoice)[-1]
    assert (invoice.currency, invoice.prices[0].amount) == ("XTR", 50)
    [q] = await questions(db)
    assert q.status == QuestionStatus.AWAITING_PAYMENT
    assert harness.session.of_type(CopyMessage) == []  # the creator sees nothing unpaid
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", 50))
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok is True
    return invoice.payload, q.id


async def test_an_unpaid_question_gets_no_checkout_reminder(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    from bot.growth import reminders

    course_id = await world(db, clock, ANN.id)
    await pay_question(harness, db, course_id)
    clock.advance(hours=3)
    assert await reminders.scan(db, clock.now(), 2) == 0
    [q] = await questions(db)
    assert q.status == QuestionStatus.AWAITING_PAYMENT


async def test_a_paid_question_unanswered_for_72_hours_is_refunded_once(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock, ANN.id)
    ref, qid = await pay_question(harness, db, course_id)
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 50, "charge-q1"))
    [q] = await questions(db)
    assert q.status == QuestionStatus.OPEN and q.asked_at == clock.now()
    assert await ledger(db) == [(LedgerKind.SALE, 50, 5, 45)]
    assert any("Paid" in t and "72 hours" in t for t in said_to(harness, ANN.id))
    assert [c.chat_id for c in harness.session.of_type(CopyMessage)] == [MAYA.id]

    # /questions lists it with its age.
    clock.advance(hours=5)
    await harness.send("/questions", MAYA)
    assert f"#{qid}" in said_to(harness, MAYA.id)[-1] and "5 hours" in said_to(harness, MAYA.id)[-1]

    # Not yet due: nothing happens before 72 hours.
    clock.advance(hours=66)
    await app.scheduler.drain()
    assert harness.session.of_type(RefundStarPayment) == []
    clock.advance(hours=1, seconds=1)
    await app.scheduler.drain()
    [call] = harness.session.of_type(RefundStarPayment)
    assert call.telegram_payment_charge_id == "charge-q1"
    [q] = await questions(db)
    assert q.status == QuestionStatus.REFUNDED
    assert await ledger(db) == [(LedgerKind.SALE, 50, 5, 45), (LedgerKind.REFUND, -50, -5, -45)]
    order = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert order is not None and order.status == OrderStatus.REFUNDED
    assert sum("did not answer" in t for t in said_to(harness, ANN.id)) == 1

    # Again later: nothing more (exactly once).
    clock.advance(days=3)
    await app.scheduler.drain()
    assert len(harness.session.of_type(RefundStarPayment)) == 1
    assert len(await ledger(db)) == 2

    # The answer comes too late: refused, and the learner gets nothing.
    harness.session.clear()
    await harness.press(QaCB(a="r", id=qid).pack(), MAYA)
    assert "72 hours" in alerts(harness)[-1]
    await harness.send("/questions", MAYA)
    assert "No questions" in said_to(harness, MAYA.id)[-1]
    assert said_to(harness, ANN.id) == []


async def test_an_answer_in_time_cancels_the_refund(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock, ANN.id)
    ref, qid = await pay_question(harness, db, course_id)
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 50, "charge-q1"))
    clock.advance(hours=71)
    await harness.press(QaCB(a="r", id=qid).pack(), MAYA)
    await harness.send("pip install it", MAYA)
    clock.advance(hours=2)
    await app.scheduler.drain()
    assert harness.session.of_type(RefundStarPayment) == []
    [q] = await questions(db)
    assert q.status == QuestionStatus.ANSWERED
    assert await ledger(db) == [(LedgerKind.SALE, 50, 5, 45)]


async def test_the_refund_survives_a_crash_between_telegram_and_the_commit(
    app: App,
    harness: Harness,
    db: AsyncSession,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    course_id = await world(db, clock, ANN.id)
    ref, _ = await pay_question(harness, db, course_id)
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 50, "charge-q1"))
    from bot.scheduler import notices

    real_later = notices.later
    crashes = [True]

    async def crash_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if crashes:
            crashes.pop()
            raise Transient("the process died before the commit")
        await real_later(*args, **kwargs)

    monkeypatch.setattr(notices, "later", crash_once)
    clock.advance(hours=73)
    harness.session.clear()
    await app.scheduler.drain()  # Telegram refunded; our transaction rolled back
    [q] = await questions(db)
    assert q.status == QuestionStatus.OPEN and await ledger(db) == [(LedgerKind.SALE, 50, 5, 45)]
    # The retry: Telegram says it is refunded already; the books now agree, once.
    harness.session.add_result(
        TelegramBadRequest(
            RefundStarPayment(user_id=ANN.id, telegram_payment_charge_id="x"),
            "Bad Request: CHARGE_ALREADY_REFUNDED",
        )
    )
    clock.advance(hours=1)
    await app.scheduler.drain()
    [q] = await questions(db)
    assert q.status == QuestionStatus.REFUNDED
    assert await ledger(db) == [(LedgerKind.SALE, 50, 5, 45), (LedgerKind.REFUND, -50, -5, -45)]
    assert len(harness.session.of_type(RefundStarPayment)) == 2
    assert sum("did not answer" in t for t in said_to(harness, ANN.id)) == 1


async def test_a_send_failing_after_the_payment_keeps_the_question(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock, ANN.id)
    ref, _ = await pay_question(harness, db, course_id)
    harness.session.clear()
    method = SendMessage(chat_id=ANN.id, text="…")
    harness.session.add_result(TelegramServerError(method, "Internal Server Error"))  # receipt
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 50, "charge-q1"))
    [q] = await questions(db)
    assert q.status == QuestionStatus.OPEN
    payment = await db.scalar(select(Payment))
    assert payment is not None and payment.raw.get("credited") is True
    assert await ledger(db) == [(LedgerKind.SALE, 50, 5, 45)]
    # The question still reached the creator; the receipt is the scheduler's to retry.
    assert [c.chat_id for c in harness.session.of_type(CopyMessage)] == [MAYA.id]
    pending = await db.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.status == JobStatus.PENDING, Job.kind == "notice")
    )
    assert pending == 1
    await app.scheduler.drain()
    assert sum("Paid" in t for t in said_to(harness, ANN.id)) == 2  # the failed try, the retry


async def test_bad_input_changes_nothing(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock, ANN.id)
    stranger = tg(5005, "Sam")
    # Asking in a course you did not buy; in your own course; in none.
    await harness.send(f"/ask {course_id}", stranger)
    assert "Only learners who have this course" in said_to(harness, stranger.id)[-1]
    await harness.send("a question nobody asked for", stranger)
    await harness.send(f"/ask {course_id}", MAYA)
    assert "your own course" in said_to(harness, MAYA.id)[-1]
    await harness.send("/ask 999999", ANN)
    assert "no such course" in said_to(harness, ANN.id)[-1]
    assert await questions(db) == []
    # Another creator cannot set the price of Maya's course.
    await harness.send(f"/askprice {course_id} 50", OTTO)
    assert "no such course" in said_to(harness, OTTO.id)[-1]
    await harness.send(f"/askprice {course_id} 99999999", MAYA)
    assert "Usage" in said_to(harness, MAYA.id)[-1]

    # A real question; then forged and foreign buttons.
    await harness.send(f"/ask {course_id}", ANN)
    await harness.send("Is there a certificate?", ANN)
    [q] = await questions(db)
    await harness.press(QaCB(a="r", id=q.id).pack(), OTTO)  # another creator
    assert "another creator" in alerts(harness)[-1]
    await harness.press(QaCB(a="r", id=q.id).pack(), ANN)  # the learner themself
    assert "another creator" in alerts(harness)[-1]
    await harness.press(QaCB(a="p", id=q.id).pack(), MAYA)  # publish before answering
    assert "Answer the question first" in alerts(harness)[-1]
    await harness.press(QaCB(a="r", id=424242).pack(), MAYA)
    assert "no longer exists" in alerts(harness)[-1]
    await harness.press(QaCB(a="x", id=q.id).pack(), MAYA)
    assert "no longer works" in alerts(harness)[-1]
    await harness.press(FaqCB(c=424242).pack(), ANN)
    assert "no FAQ" in alerts(harness)[-1]
    # Otto's next message is not an answer to anything.
    await harness.send("my answer", OTTO)
    [q] = await questions(db)
    assert q.status == QuestionStatus.OPEN and not q.published
    assert (
        await db.scalar(select(func.count()).select_from(Job).where(Job.kind == paid.REFUND_JOB))
        == 0
    )
    assert q.asked_at is not None and clock.now() - q.asked_at < timedelta(minutes=1)


async def test_question_money_in_the_rollups_equals_a_rebuild(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    """A paid and refunded question is money in the creator's numbers (live and rebuilt
    alike), and no step of any product's funnel."""
    from bot.analytics.rollups import rebuild
    from bot.models import FunnelProgress, MoneyDaily

    course_id = await world(db, clock, ANN.id)
    ref, _ = await pay_question(harness, db, course_id)
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 50, "charge-q1"))
    clock.advance(hours=73)
    await app.scheduler.drain()

    async def snapshot() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        db.expire_all()
        money = sorted(
            (
                m.day,
                m.product_kind,
                m.currency,
                m.sales,
                m.sales_gross,
                m.refunds,
                m.refunds_gross,
                m.gross,
                m.fee,
                m.net,
            )
            for m in await db.scalars(select(MoneyDaily))
        )
        funnel = sorted(
            (f.product_kind, f.product_id, f.user_id)
            for f in await db.scalars(select(FunnelProgress))
        )
        return money, funnel

    live = await snapshot()
    money, funnel = live
    # The sale on its day, the refund 72 hours later: gross = fee + net on each row.
    assert [m[1:] for m in money] == [
        (ProductKind.QUESTION, "XTR", 1, 50, 0, 0, 50, 5, 45),
        (ProductKind.QUESTION, "XTR", 0, 0, 1, 50, -50, -5, -45),
    ]
    assert funnel == []
    await rebuild(db)
    await db.commit()
    assert await snapshot() == live
