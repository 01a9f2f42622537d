"""A coupon's `uses=N` holds when learners redeem it at the same moment: updates fed
concurrently through the real Dispatcher, each with its own database session, on SQLite
and PostgreSQL. A use is reserved when the invoice is opened and freed when an abandoned
order has expired."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest
from aiogram.methods import AnswerCallbackQuery, AnswerPreCheckoutQuery, SendInvoice, SendMessage
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.config import Settings
from bot.keyboards.callbacks import BuyCB
from bot.models import Coupon, Entitlement, Job, Order, OrderStatus
from bot.payments import coupons, housekeeping
from bot.scheduler.clock import ManualClock
from bot.scheduler.jobs import JobContext
from tests.support.payments import (
    CREATOR_USER,
    make_course,
    pre_checkout_update,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

MAYA = tg(CREATOR_USER, "Maya")
LEARNERS = [tg(3000 + i, f"L{i}") for i in range(10)]
ANN, BOB = LEARNERS[0], LEARNERS[1]


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def coupon_row(db: AsyncSession) -> Coupon:
    db.expire_all()
    coupon = await db.scalar(select(Coupon))
    assert coupon is not None
    return coupon


def said_to(harness: Harness, user_id: int) -> list[str]:
    return [m.text for m in harness.session.of_type(SendMessage) if int(m.chat_id) == user_id]


async def enter_code(harness: Harness, course_id: int, learner: Any, code: str) -> None:
    await harness.press(BuyCB(id=course_id).pack(), learner)
    await harness.click("promo code", learner)
    await harness.send(code, learner)


async def test_ten_learners_redeem_a_one_use_free_code_at_once_one_gets_it(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/coupon add GIFT 100% uses=1", MAYA)
    for learner in LEARNERS:  # each is asked for the code
        await harness.press(BuyCB(id=course_id).pack(), learner)
        await harness.click("promo code", learner)

    await asyncio.gather(*(harness.send("gift", learner) for learner in LEARNERS))

    assert await db.scalar(select(func.count()).select_from(Entitlement)) == 1
    assert await db.scalar(select(func.count()).select_from(Order)) == 1
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (1, 0)
    replies = [said_to(harness, learner.id)[-1] for learner in LEARNERS]
    assert sum("is yours, free" in r for r in replies) == 1
    assert sum("used up" in r for r in replies) == 9


async def test_two_pay_a_one_use_half_price_code_at_once_one_gets_the_discount(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/coupon add HALF 50% uses=1", MAYA)
    buttons = {}
    for learner in (ANN, BOB):  # both see the discounted price: nothing is taken yet
        await enter_code(harness, course_id, learner, "half")
        assert "HALF applied" in harness.last_text()
        buttons[learner.id] = harness.button("Telegram Stars")

    await asyncio.gather(*(harness.press(buttons[u.id], u) for u in (ANN, BOB)))

    # One discounted invoice. The other learner is told the code is gone: "used up" and
    # no invoice when both raced for the use, or, when their press came after the
    # winner's invoice was committed, the full price with a note that the code is no
    # longer valid (as for any stale code).
    invoices = harness.session.of_type(SendInvoice)
    discounted = [i for i in invoices if i.prices[0].amount == 250]
    assert sorted(i.prices[0].amount for i in invoices) in ([250], [250, 500])
    winner = ANN if int(discounted[0].chat_id) == ANN.id else BOB
    loser = BOB if winner is ANN else ANN
    told = [
        a.text or ""
        for a in harness.session.of_type(AnswerCallbackQuery)
        if a.show_alert and ("used up" in (a.text or "") or "full price" in (a.text or ""))
    ]
    assert len(told) == 1
    assert [int(i.chat_id) for i in invoices if i not in discounted] in ([], [loser.id])
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (0, 1)
    await harness.send("/coupon list", MAYA)
    assert "0/1 (+1 reserved)" in harness.last_text()

    # Pressed again, the loser's button is at the full price (as for any stale code);
    # the code entered now is used up.
    await harness.press(buttons[loser.id], loser)
    assert harness.session.of_type(SendInvoice)[-1].prices[0].amount == 500
    assert "full price" in (harness.session.of_type(AnswerCallbackQuery)[-1].text or "")
    await enter_code(harness, course_id, loser, "half")
    assert "used up" in harness.last_text()

    # The winner pays: the reservation becomes a use.
    payload = discounted[0].payload
    await harness.feed(pre_checkout_update(winner, payload, "XTR", 250))
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok is True
    await harness.feed(successful_payment_update(winner, payload, "XTR", 250, "half-1"))
    assert "Payment received" in harness.last_text()
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (1, 0)


async def test_pressing_pay_again_keeps_the_learners_own_reservation(
    harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/coupon add HALF 50% uses=1", MAYA)
    await enter_code(harness, course_id, ANN, "half")
    stars, card = harness.button("Telegram Stars"), harness.button("Card")
    await harness.press(stars, ANN)
    await harness.press(stars, ANN)  # the same invoice again
    await harness.press(card, ANN)  # another method: the reservation follows her
    invoices = harness.session.of_type(SendInvoice)
    assert [i.prices[0].amount for i in invoices] == [250, 250, 999]
    assert invoices[0].payload == invoices[1].payload
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (0, 1)

    # She pays the older Stars invoice after all: its order takes the reservation back.
    payload = invoices[0].payload
    await harness.feed(pre_checkout_update(ANN, payload, "XTR", 250))
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok is True
    await harness.feed(successful_payment_update(ANN, payload, "XTR", 250, "own-1"))
    assert "Payment received" in harness.last_text()
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (1, 0)


async def test_an_abandoned_invoice_frees_its_use_after_the_order_expires(
    harness: Harness, app: App, db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/coupon add HALF 50% uses=1", MAYA)
    await enter_code(harness, course_id, ANN, "half")
    await harness.click("Telegram Stars", ANN)
    stale = harness.session.of_type(SendInvoice)[-1]
    await enter_code(harness, course_id, BOB, "half")
    assert "used up" in harness.last_text()

    async def housekeep() -> None:
        async with app.sessionmaker() as session:
            ctx = JobContext(
                session=session, sender=cast(Any, None), clock=clock, renderer=cast(Any, None)
            )
            await housekeeping.run(ctx, Job(kind=housekeeping.KIND, payload={}))
            await session.commit()

    # Expired, but a payment Telegram approved just before the expiry may still land:
    # the use stays reserved for a short grace.
    clock.advance(minutes=settings.order_ttl_minutes + 1)
    await housekeep()
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (0, 1)
    order = await db.scalar(select(Order).where(Order.public_ref == stale.payload))
    assert order is not None and order.status == OrderStatus.EXPIRED

    clock.advance((coupons.RESERVATION_GRACE + timedelta(minutes=1)).total_seconds())
    await housekeep()
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (0, 0)

    # Free again: Bob gets it, and Ann's stale invoice is refused before any charge.
    await enter_code(harness, course_id, BOB, "half")
    await harness.click("Telegram Stars", BOB)
    assert harness.session.of_type(SendInvoice)[-1].prices[0].amount == 250
    await harness.feed(pre_checkout_update(ANN, stale.payload, "XTR", 250))
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok is False
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (0, 1)


async def test_an_invoice_without_a_held_use_is_refused_at_pre_checkout(
    harness: Harness, db: AsyncSession
) -> None:
    """Pre-checkout is the last word before Telegram charges: an order that holds no use
    (here: opened before this release, when nothing was reserved) takes one if the code
    still has room, and is refused if it has none."""
    _, course_id = await make_course(db)
    await harness.send("/coupon add HALF 50% uses=1", MAYA)
    buttons = []
    for learner in (ANN, BOB):
        await enter_code(harness, course_id, learner, "half")
        buttons.append(harness.button("Telegram Stars"))
    await harness.press(buttons[0], ANN)
    # Ann's use is given back, as if her order predated reservations; Bob takes it.
    await db.execute(update(Order).values(coupon_reserved=False))
    await db.execute(update(Coupon).values(reserved_count=0))
    await db.commit()
    await harness.press(buttons[1], BOB)
    invoices = harness.session.of_type(SendInvoice)
    assert [i.prices[0].amount for i in invoices] == [250, 250]
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (0, 1)  # Bob's

    await harness.feed(pre_checkout_update(ANN, invoices[0].payload, "XTR", 250))
    answer = harness.session.of_type(AnswerPreCheckoutQuery)[-1]
    assert answer.ok is False and "promo code" in (answer.error_message or "")
    await harness.feed(pre_checkout_update(BOB, invoices[1].payload, "XTR", 250))
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok is True
    await harness.feed(successful_payment_update(BOB, invoices[1].payload, "XTR", 250, "b-1"))
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (1, 0)

    # Had Bob's use been free, Ann's invoice would have taken it at pre-checkout.
    await db.execute(update(Coupon).values(max_uses=2))
    await db.commit()
    await harness.feed(pre_checkout_update(ANN, invoices[0].payload, "XTR", 250))
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok is True
    coupon = await coupon_row(db)
    assert (coupon.used_count, coupon.reserved_count) == (1, 1)
