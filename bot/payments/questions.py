"""Paid questions: the Stars order behind a question, its crediting, and the automatic
refund of one the creator left unanswered for REFUND_AFTER.

Book first, then speak: the question opens in the transaction that books the payment
(bot.payments.checkout), together with its refund job, so a payment can never be kept
without a question nor a question without its deadline. The refund job claims the
question (open → refunded) and the payment (refunded_at) in its own transaction, calls
refundStarPayment, and commits with its ledger entry; run twice (a restart after the
call, before the commit), Telegram answers "already refunded" and the books agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.models import (
    Job,
    JobStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    ProductKind,
    Question,
    QuestionStatus,
)
from bot.money import STARS
from bot.payments.gateways import Gateways
from bot.payments.orders import new_ref
from bot.payments.refunds import RefundResult, RefundStatus, refund_payment

REFUND_AFTER = timedelta(hours=72)
REFUND_JOB = "qa.refund"


async def open_order(
    session: AsyncSession, question: Question, settings: Settings, now: datetime
) -> Order:
    """The pending Stars order behind a priced question's invoice."""
    order = Order(
        public_ref=new_ref(),
        user_id=question.user_id,
        creator_id=question.creator_id,
        product_kind=ProductKind.QUESTION,
        product_id=question.id,
        method=PaymentMethod.STARS,
        currency=STARS,
        list_amount_minor=question.stars,
        amount_minor=question.stars,
        status=OrderStatus.PENDING,
        expires_at=now + timedelta(minutes=settings.order_ttl_minutes),
        created_at=now,
    )
    session.add(order)
    await session.flush()
    question.order_id = order.id
    return order


async def credit(session: AsyncSession, order: Order, now: datetime) -> Question | None:
    """The payment is booked (the caller's transaction): the question reaches the creator
    and its deadline starts."""
    question = await session.get(Question, order.product_id)
    if question is None:
        return None
    question.status = QuestionStatus.OPEN
    question.asked_at = now
    question.order_id = order.id
    session.add(
        Job(
            kind=REFUND_JOB,
            dedupe_key=f"{REFUND_JOB}:{question.id}",
            payload={"question": question.id},
            run_at=now + REFUND_AFTER,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    return question


async def refund_unanswered(
    session: AsyncSession,
    question_id: int,
    gateways: Gateways,
    settings: Settings,
    now: datetime,
) -> tuple[Question, RefundResult] | None:
    """Give the Stars back for a question still unanswered; None when it was answered
    (or refunded) meanwhile. A provider failure leaves the question open (the caller
    retries: the claim below is rolled back with the caller's transaction)."""
    claimed = await session.execute(
        update(Question)
        .where(Question.id == question_id, Question.status == QuestionStatus.OPEN)
        .values(status=QuestionStatus.REFUNDED, refunded_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        return None
    question = await session.get(Question, question_id)
    assert question is not None
    await session.refresh(question)
    # The credited payment: a second one of the same order was refunded on arrival.
    payment = await session.scalar(
        select(Payment)
        .where(Payment.order_id == question.order_id, Payment.refunded_at.is_(None))
        .order_by(Payment.id)
        .limit(1)
    )
    if payment is None:  # refunded by hand (/refund) already
        return question, RefundResult(RefundStatus.ALREADY)
    result = await refund_payment(
        session, payment, gateways, settings, actor_creator_id=None, now=now
    )
    return question, result
