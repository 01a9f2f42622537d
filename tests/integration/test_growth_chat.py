"""Growth in the chat: a_ and g_ deep links, Buy as a gift, the gift receipt that cannot
be sent (the sale stays), the buyer told of a claim after the commit, and the creators'
commands refusing bad input with nothing changed."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import TelegramServerError
from aiogram.methods import GetMe, SendInvoice, SendMessage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import GiftCB, ShareCB
from bot.models import (
    AffiliateAttribution,
    AffiliateEntry,
    AffiliateProgram,
    Gift,
    GiftStatus,
    Job,
    JobStatus,
    LedgerEntry,
    Order,
    OrderStatus,
    Plan,
)
from bot.scheduler import notices
from tests.support.payments import (
    CREATOR_USER,
    make_course,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

ANN, BOB, CAT = tg(1001, "Ann"), tg(1002, "Bob"), tg(1003, "Cat")
CREATOR = tg(CREATOR_USER, "Maya")


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


def last_to(h: Harness, user_id: int) -> str:
    texts = [r.text for r in h.session.of_type(SendMessage) if str(r.chat_id) == str(user_id)]
    assert texts, f"nothing said to {user_id}"
    return texts[-1]


async def count(db: AsyncSession, model: type) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_an_affiliate_link_opens_the_card_and_earns_on_the_sale(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    _, course_id = await make_course(db)
    await harness.send("/affiliate 20 hold=14", CREATOR)
    assert "20%" in last_to(harness, CREATOR.id)
    await harness.press(ShareCB(id=course_id).pack(), BOB)
    text = last_to(harness, BOB.id)
    payload = text.split("start=")[1].split()[0]
    assert payload.startswith("a_")
    await harness.send(f"/start {payload}", ANN)
    assert "Python from zero" in last_to(harness, ANN.id)
    await harness.send(f"/start {payload}", BOB)  # own click: counted, not attributed
    assert await count(db, AffiliateAttribution) == 1

    await harness.click("Buy", ANN)
    await harness.click("Telegram Stars", ANN)
    ref = harness.session.of_type(SendInvoice)[-1].payload
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "charge-1"))
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "charge-1"))
    db.expire_all()
    assert await count(db, AffiliateEntry) == 1
    await harness.send("/earnings", BOB)
    assert "pending ⭐ 100" in last_to(harness, BOB.id).replace("\u00a0", " ")
    await harness.send("/affiliates", CREATOR)
    assert "1 buyers" in last_to(harness, CREATOR.id)
    # Not payable yet: the hold runs for 14 days.
    await harness.send(f"/payout {BOB.id} 50XTR", CREATOR)
    assert "more than the payable balance" in last_to(harness, CREATOR.id)
    assert await count(db, AffiliateEntry) == 1


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("/affiliate 95", "from 1 to 90"),
        ("/affiliate 0", "from 1 to 90"),
        ("/affiliate 20 hold=-3", "hold is a number of days"),
        ("/affiliate 20 course=999", "not one of your courses"),
        ("/payout 1002 5XTR", "No affiliate of yours"),
        ("/payout", "Usage"),
    ],
)
async def test_creators_bad_input_changes_nothing(
    app: App, harness: Harness, db: AsyncSession, command: str, reply: str
) -> None:
    await make_course(db)
    await harness.send(command, CREATOR)
    assert reply in last_to(harness, CREATOR.id)
    db.expire_all()
    assert await count(db, AffiliateProgram) == 0
    assert await count(db, AffiliateEntry) == 0


async def test_forged_links_are_told_apart(app: App, harness: Harness, db: AsyncSession) -> None:
    await make_course(db)
    await harness.send("/start a_forgedcode", ANN)
    assert "not valid" in last_to(harness, ANN.id)
    await harness.send("/start g_" + "A" * 24, ANN)
    assert "gift link is not valid" in last_to(harness, ANN.id)
    await harness.send(f"/share {10**30}", ANN)
    assert "Usage" in last_to(harness, ANN.id)
    assert await count(db, AffiliateAttribution) == 0


@pytest.mark.parametrize("me_fails", [False, True], ids=["link-known", "getme-fails"])
async def test_a_gift_whose_receipt_fails_is_still_sold_and_claimed_once(
    app: App, harness: Harness, db: AsyncSession, me_fails: bool
) -> None:
    _, course_id = await make_course(db)
    await harness.press(GiftCB(id=course_id).pack(), CAT)
    await harness.click("Telegram Stars", CAT)
    ref = harness.session.of_type(SendInvoice)[-1].payload
    harness.session.clear()
    # Book first, then speak: the bot's username (getMe, not cached yet) is asked only
    # after the commit, then the receipt is sent. Both may fail: the sale and the gift stay.
    harness.session.add_result(
        TelegramServerError(GetMe(), "Internal Server Error") if me_fails else harness.session.me
    )
    harness.session.add_result(
        TelegramServerError(SendMessage(chat_id=CAT.id, text="…"), "Internal Server Error")
    )
    await harness.feed(successful_payment_update(CAT, ref, "XTR", 500, "charge-g"))
    assert isinstance(harness.session.requests[0], GetMe)  # asked after the booking
    db.expire_all()
    gift = await db.scalar(select(Gift))
    assert gift is not None and gift.status == GiftStatus.OPEN
    order = await db.get(Order, gift.order_id)
    assert order is not None and order.status == OrderStatus.PAID
    assert await count(db, LedgerEntry) == 1
    [job] = list(await db.scalars(select(Job).where(Job.kind == notices.KIND)))
    assert job.status == JobStatus.PENDING  # the scheduler sends it again
    await app.scheduler.drain()
    receipt = last_to(harness, CAT.id)
    assert f"g_{gift.token}" in receipt
    link = f"https://t.me/lyceum_test_bot?start=g_{gift.token}"
    assert (link in receipt) is not me_fails  # else the /start form, still usable

    await harness.send(f"/start g_{gift.token}", CAT)
    assert "the gift you bought" in last_to(harness, CAT.id)
    await asyncio.gather(
        harness.send(f"/start g_{gift.token}", ANN), harness.send(f"/start g_{gift.token}", BOB)
    )
    db.expire_all()
    gift = await db.scalar(select(Gift))
    assert gift is not None and gift.status == GiftStatus.CLAIMED
    winner = ANN if gift.claimed_by == ANN.id else BOB
    loser = BOB if winner is ANN else ANN
    assert "a gift!" in last_to(harness, winner.id)
    assert "already been claimed" in last_to(harness, loser.id)
    # The buyer hears of it, through a queued notice.
    assert "was claimed" in last_to(harness, CAT.id)


async def test_a_plan_link_is_shared_and_opens_the_plan(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    creator_id, _course = await make_course(db)
    plan = Plan(
        creator_id=creator_id, title="Club", stars_price=100, period_days=30, published=True
    )
    db.add(plan)
    await db.commit()
    await harness.send(f"/share plan={plan.id}", BOB)
    text = last_to(harness, BOB.id)
    assert "this plan" in text
    payload = text.split("start=")[1].split()[0]
    await harness.send(f"/start {payload}", ANN)
    assert "<b>Club</b>" in last_to(harness, ANN.id)
    assert await count(db, AffiliateAttribution) == 1
    await harness.send(f"/share plan={plan.id}", CREATOR)
    assert "your own course or plan" in last_to(harness, CREATOR.id)
    await harness.send("/share plan=abc", BOB)
    assert "Usage" in last_to(harness, BOB.id)
