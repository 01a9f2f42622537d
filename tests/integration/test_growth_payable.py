"""When a commission's hold ends the affiliate hears it once, in their language, outside
their quiet hours, through the scheduler; never for a refunded sale, never twice (not
even after a restart), and never again after they press the stop button. The bot's clock
is moved (ManualClock), the dispatcher and the scheduler are the real ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiogram.methods import SendInvoice, SendMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App, create_scheduler
from bot.config import Settings
from bot.growth import payable
from bot.keyboards.callbacks import ShareCB
from bot.models import Job, Payment, User
from bot.payments.refunds import refund_payment
from bot.scheduler.clock import ManualClock
from tests.support.growth import GATEWAYS
from tests.support.payments import (
    CREATOR_USER,
    make_course,
    pay_settings,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

ANN, BOB, CAT = tg(1001, "Ann"), tg(1002, "Bob", "zh"), tg(1003, "Cat")
CREATOR = tg(CREATOR_USER, "Maya")
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return pay_settings(database_url, timezone="UTC")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


def said_to(h: Harness, user_id: int) -> list[str]:
    return [r.text for r in h.session.of_type(SendMessage) if str(r.chat_id) == str(user_id)]


def payable_messages(h: Harness) -> list[SendMessage]:
    return [
        r
        for r in h.session.of_type(SendMessage)
        if str(r.chat_id) == str(BOB.id) and "💰" in r.text
    ]


async def buy(h: Harness, buyer: object, charge: str) -> None:
    await h.click("Buy", buyer)  # type: ignore[arg-type]
    await h.click("Telegram Stars", buyer)  # type: ignore[arg-type]
    ref = h.session.of_type(SendInvoice)[-1].payload
    await h.feed(successful_payment_update(buyer, ref, "XTR", 500, charge))  # type: ignore[arg-type]


async def referred_sale(h: Harness, course_id: int, buyer: object, charge: str) -> None:
    await h.press(ShareCB(id=course_id).pack(), BOB)
    payload = said_to(h, BOB.id)[-1].split("start=")[1].split()[0]
    await h.send(f"/start {payload}", buyer)  # type: ignore[arg-type]
    await buy(h, buyer, charge)


async def test_the_affiliate_hears_once_when_the_hold_ends(
    app: App,
    harness: Harness,
    db: AsyncSession,
    clock: ManualClock,
    settings: Settings,
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/affiliate 20 hold=14", CREATOR)
    await referred_sale(harness, course_id, ANN, "ch-ann")
    await app.scheduler.drain()
    assert payable_messages(harness) == []  # held for 14 days

    # Day 14, 23:00 UTC: the hold has ended, but it is Bob's quiet time.
    clock.set(START + timedelta(days=14, hours=13))
    await app.scheduler.drain()
    assert payable_messages(harness) == []
    # The next morning it comes, once, in Bob's language, with the way to stop them.
    clock.set(START + timedelta(days=15, hours=-1, minutes=30))
    await app.scheduler.drain()
    [notice] = payable_messages(harness)
    assert "⭐ 100" in notice.text.replace("\u00a0", " ")
    assert "佣金" in notice.text  # zh
    stop = notice.reply_markup.inline_keyboard[0][0]  # type: ignore[union-attr]
    assert stop.callback_data == "gr:eoff"
    # A restart (a new scheduler on the same database) and more time: nothing again.
    sent = len(harness.session.of_type(SendMessage))
    restarted = create_scheduler(settings, app.bot, app.sessionmaker, app.i18n, clock)
    await restarted.recover()
    clock.advance(days=3)
    await restarted.drain()
    assert len(harness.session.of_type(SendMessage)) == sent
    jobs = list(await db.scalars(select(Job).where(Job.kind == payable.KIND)))
    assert len(jobs) == 1 and jobs[0].status == "done"
    # The stop button: later commissions' holds end in silence.
    await harness.press("gr:eoff", BOB)
    db.expire_all()
    bob = await db.get(User, BOB.id)
    assert bob is not None and bob.earnings_notices_off
    await referred_sale(harness, course_id, CAT, "ch-cat")
    clock.advance(days=15)
    await app.scheduler.drain()
    assert len(payable_messages(harness)) == 1


async def test_a_sale_refunded_in_the_hold_brings_no_message(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/affiliate 20 hold=7", CREATOR)
    await referred_sale(harness, course_id, ANN, "ch-ann")
    payment = await db.scalar(select(Payment))
    assert payment is not None
    await refund_payment(
        db, payment, GATEWAYS, settings, actor_creator_id=None, now=clock.now() + timedelta(days=1)
    )
    await db.commit()
    clock.advance(days=8)
    await app.scheduler.drain()
    assert payable_messages(harness) == []
    [job] = list(await db.scalars(select(Job).where(Job.kind == payable.KIND)))
    assert job.status == "done" and job.last_error == "refunded"


async def test_forged_growth_buttons_change_nothing(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    await harness.send("/start", BOB)
    await harness.press("gr:whatever", BOB)
    db.expire_all()
    bob = await db.get(User, BOB.id)
    assert bob is not None and not bob.earnings_notices_off and not bob.reminders_off
