"""Growth messages through the real Dispatcher and the app's own scheduler on a manual
clock: abandoned-checkout reminders, segmented broadcasts, win-back offers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from aiogram.methods import SendMessage, SendPhoto
from aiogram.types import InlineKeyboardMarkup, PhotoSize
from aiogram.types import User as TgUser
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.growth import reminders, winback
from bot.models import (
    CheckoutReminder,
    Coupon,
    CouponKind,
    Course,
    Creator,
    Entitlement,
    FunnelProgress,
    Job,
    Lesson,
    Order,
    OrderStatus,
    Plan,
    ProductKind,
    User,
    WinbackOffer,
)
from bot.scheduler.clock import ManualClock
from bot.services import access
from tests.support.updates import Harness, message_update, tg_user

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC
ANN = tg_user(1001, "Ann")
BO = tg_user(1002, "Bo")
LI = tg_user(1003, "Li", language_code="zh")
CLEO = tg_user(2001, "Cleo")
OTTO = tg_user(2002, "Otto")
_refs = itertools.count(1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def creator_with_course(h: Harness, db: AsyncSession, who: TgUser, title: str) -> int:
    await h.send("/becomecreator", who)
    creator = await db.scalar(select(Creator).where(Creator.user_id == who.id))
    assert creator is not None
    course = Course(creator_id=creator.id, title=title, published=True, stars_price=100)
    db.add(course)
    await db.flush()
    db.add(Lesson(course_id=course.id, position=1, title="One", text="Body"))
    await db.commit()
    course_id = course.id
    await db.close()
    return course_id


async def abandon(
    db: AsyncSession, user: TgUser, course_id: int, at: datetime, kind: str = ProductKind.COURSE
) -> int:
    """What an opened and unpaid invoice leaves behind: a pending order."""
    creator_id = await db.scalar(select(Course.creator_id).where(Course.id == course_id))
    if kind == ProductKind.PLAN:
        creator_id = await db.scalar(select(Plan.creator_id).where(Plan.id == course_id))
    order = Order(
        public_ref=f"ref{next(_refs)}-{user.id}",
        user_id=user.id,
        creator_id=creator_id,
        product_kind=kind,
        product_id=course_id,
        method="stars",
        currency="XTR",
        list_amount_minor=100,
        amount_minor=100,
        status=OrderStatus.PENDING,
        created_at=at,
        updated_at=at,
    )
    db.add(order)
    await db.commit()
    order_id = order.id
    await db.close()
    return order_id


async def tick(app: App, db: AsyncSession, clock: ManualClock) -> None:
    await reminders.ensure_scheduled(db, clock.now())
    await db.commit()
    await db.close()
    await app.scheduler.drain()


def reminders_to(h: Harness, chat_id: int) -> list[SendMessage]:
    return [
        r
        for r in h.session.of_type(SendMessage)
        if r.chat_id == chat_id and ("You left" in r.text or "结账" in r.text)
    ]


async def advance(app: App, db: AsyncSession, clock: ManualClock, **delta: float) -> None:
    clock.advance(**delta)
    await tick(app, db, clock)


# --- abandoned checkout -----------------------------------------------------------------


async def test_one_reminder_after_the_hours_with_the_creators_coupon_and_a_stop_button(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    await h.send("/coupon add SPRING 20% course=" + str(cid), CLEO)
    await h.send(f"/remind coupon spring course={cid}", CLEO)
    assert "now offer the code SPRING" in h.last_text()
    await h.send("/start", ANN)
    await abandon(db, ANN, cid, clock.now())
    await tick(app, db, clock)
    await advance(app, db, clock, hours=5)
    assert reminders_to(h, ANN.id) == []  # not before ABANDONED_REMINDER_HOURS
    await advance(app, db, clock, hours=1, minutes=11)
    (sent,) = reminders_to(h, ANN.id)
    assert "Watercolour" in sent.text and "SPRING" in sent.text and "20%" in sent.text
    markup = sent.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    labels = [b.text for row in markup.inline_keyboard for b in row]
    assert any("No more reminders" in label for label in labels)
    # Exactly one: more ticks, and a second abandoned invoice within 7 days, send nothing.
    await abandon(db, ANN, cid, clock.now())
    await advance(app, db, clock, hours=7)
    await advance(app, db, clock, days=1)
    assert len(reminders_to(h, ANN.id)) == 1
    # The button turns them off, on the user; eight days on, a new invoice reminds nobody.
    await h.press(markup.inline_keyboard[1][0].callback_data or "", ANN)
    user = await db.get(User, ANN.id)
    assert user is not None and user.reminders_off
    await db.close()
    await advance(app, db, clock, days=8)
    await abandon(db, ANN, cid, clock.now())
    await advance(app, db, clock, hours=6, minutes=11)
    assert len(reminders_to(h, ANN.id)) == 1
    outcomes = list(
        await db.scalars(select(CheckoutReminder.outcome).order_by(CheckoutReminder.id))
    )
    assert outcomes == ["sent", "recent", "off"]


async def test_no_reminder_for_who_paid_owns_or_blocked_the_bot(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    for user in (ANN, BO, LI):
        await h.send("/start", user)
        await abandon(db, user, cid, clock.now())
    await tick(app, db, clock)
    # Ann paid meanwhile (her access is granted), Bo blocked the bot; Li did neither.
    await access.grant(db, ANN.id, ProductKind.COURSE, cid, days=None, now=clock.now())
    bo = await db.get(User, BO.id)
    assert bo is not None
    bo.is_blocked = True
    await db.commit()
    await db.close()
    await advance(app, db, clock, hours=6, minutes=11)
    assert reminders_to(h, ANN.id) == [] and reminders_to(h, BO.id) == []
    # Li reads it in Chinese, with the stop button in Chinese too.
    (sent,) = reminders_to(h, LI.id)
    assert "Watercolour" in sent.text and "结账" in sent.text
    assert isinstance(sent.reply_markup, InlineKeyboardMarkup)
    assert "不再" in sent.reply_markup.inline_keyboard[1][0].text


async def test_a_reminder_waits_for_the_end_of_quiet_hours(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    await h.send("/start", ANN)
    await h.send("/timezone Asia/Shanghai", ANN)  # UTC+8: quiet 22:00-08:00 is 14:00-00:00 UTC
    await abandon(db, ANN, cid, clock.now())  # 10:00 UTC = 18:00 in Shanghai
    await tick(app, db, clock)
    await advance(app, db, clock, hours=6, minutes=11)  # 00:11 in Shanghai: quiet
    assert reminders_to(h, ANN.id) == []
    await advance(app, db, clock, hours=8)  # 08:11 in Shanghai
    assert len(reminders_to(h, ANN.id)) == 1


async def test_remind_refuses_another_creators_code_and_bad_input(
    h: Harness, db: AsyncSession
) -> None:
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    other = await creator_with_course(h, db, OTTO, "Pottery")
    await h.send("/coupon add OTTO10 10%", OTTO)
    await h.send("/remind coupon OTTO10", CLEO)
    assert "No such promo code among yours" in h.last_text()
    await h.send(f"/remind coupon off course={other}", CLEO)
    assert "No such course or plan among yours" in h.last_text()
    for args in ("", "coupon", "garbage", f"coupon X course={cid} plan=1", "coupon X course=-1"):
        await h.send(f"/remind {args}".strip(), CLEO)
        assert "/remind coupon" in h.last_text(), args
    await h.send("/remind coupon X", ANN)
    assert "Only creators" in h.last_text()
    assert await db.scalar(select(func.count()).select_from(reminders.ReminderCoupon)) == 0


# --- segmented broadcasts ---------------------------------------------------------------


async def test_segments_reach_only_the_creators_own_audience(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    otto_course = await creator_with_course(h, db, OTTO, "Pottery")
    for user in (ANN, BO, LI):
        await h.send("/start", user)
    creator_id = await db.scalar(select(Course.creator_id).where(Course.id == cid))
    otto_id = await db.scalar(select(Course.creator_id).where(Course.id == otto_course))
    assert creator_id is not None and otto_id is not None
    # Ann learns Cleo's course; Bo viewed it and did not buy; Li viewed Otto's only.
    await access.grant(db, ANN.id, ProductKind.COURSE, cid, days=None, now=clock.now())
    for user, course, creator in ((BO, cid, creator_id), (LI, otto_course, otto_id)):
        db.add(
            FunnelProgress(
                product_kind=ProductKind.COURSE,
                product_id=course,
                user_id=user.id,
                creator_id=creator,
                entered_at=clock.now(),
                viewed_at=clock.now(),
            )
        )
    await db.commit()
    await db.close()

    await h.send("/broadcast", CLEO)  # all of Cleo's products: every segment offered
    await h.click("Viewed a course", CLEO)
    assert "1 recipient" in h.last_text()
    await h.send("Spring sale on Watercolour!", CLEO)
    assert "Ready to send to 1 recipient" in h.last_text()
    assert not [r for r in h.session.of_type(SendMessage) if "Spring sale" in r.text]
    await h.click("Send", CLEO)
    assert "queued for 1 learner" in h.last_text()
    for _ in range(3):
        await app.scheduler.drain()
        clock.advance(seconds=6)
    got = {r.chat_id for r in h.session.of_type(SendMessage) if "Spring sale" in r.text}
    assert got == {BO.id}  # never Li (Otto's audience), never Ann (she bought it)

    # Otto cannot aim at Cleo's course; Cancel sends nothing.
    await h.send(f"/broadcast {cid}", OTTO)
    assert "No such course" in h.last_text()
    await h.send(f"/broadcast {otto_course}", OTTO)
    await h.click("Viewed", OTTO)
    await h.send("Pottery news", OTTO)
    await h.click("Cancel", OTTO)
    assert "Nothing was sent" in h.last_text()
    await app.scheduler.drain()
    assert not [r for r in h.session.of_type(SendMessage) if "Pottery news" in r.text]


async def test_a_photo_broadcast_to_learners_counts_the_blocked_apart(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    for user in (ANN, BO):
        await h.send("/start", user)
    for user in (ANN, BO):
        await access.grant(db, user.id, ProductKind.COURSE, cid, days=None, now=clock.now())
    bo = await db.get(User, BO.id)
    assert bo is not None
    bo.is_blocked = True
    await db.commit()
    await db.close()
    await h.send(f"/broadcast {cid}", CLEO)
    await h.click("Learners", CLEO)
    assert "1 recipient (and 1 who blocked the bot, left out)" in h.last_text()
    update = message_update(None, CLEO)
    assert update.message is not None
    photo = [PhotoSize(file_id="PHOTO1", file_unique_id="u1", width=90, height=90)]
    message = update.message.model_copy(update={"photo": photo, "caption": "New <b>palette</b>"})
    await h.feed(update.model_copy(update={"message": message}))
    await h.click("Send", CLEO)
    for _ in range(3):
        await app.scheduler.drain()
        clock.advance(seconds=6)
    (sent,) = h.session.of_type(SendPhoto)
    assert (sent.chat_id, sent.photo, sent.caption) == (
        ANN.id,
        "PHOTO1",
        "New &lt;b&gt;palette&lt;/b&gt;",
    )


async def test_broadcast_bad_input(h: Harness, db: AsyncSession) -> None:
    await creator_with_course(h, db, CLEO, "Watercolour")
    for args in ("plan=0", "plan=x", "1 2", "course=1", "-1", "²"):
        await h.send(f"/broadcast {args}", CLEO)
        assert "Usage: /broadcast" in h.last_text(), args
    await h.send("/broadcast plan=999", CLEO)
    assert "No such plan" in h.last_text()
    await h.send("/broadcast", ANN)
    assert "Only creators" in h.last_text()
    assert (
        await db.scalar(select(func.count()).select_from(Job).where(Job.kind == "broadcast")) == 0
    )


# --- win-back offers --------------------------------------------------------------------


async def test_a_lapsed_plan_offers_the_winback_discount_once_ever(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    await creator_with_course(h, db, CLEO, "Watercolour")
    await h.send("/plan new Studio stars=300 days=30 publish=yes", CLEO)
    plan_id = await db.scalar(select(Plan.id))
    assert plan_id is not None
    await db.close()
    for bad in ("winback=95", "winback=-5", "winback=x", "winback=²"):
        await h.send(f"/plan {plan_id} {bad}", CLEO)
        assert "Usage" in h.last_text(), bad
    await h.send(f"/plan {plan_id} winback=25", OTTO)
    assert "Only creators" in h.last_text() or "No such" in h.last_text()
    await h.send(f"/plan {plan_id} winback=25", CLEO)
    plan = await db.get(Plan, plan_id)
    assert plan is not None and plan.winback_percent == 25
    await db.close()

    await h.send("/start", LI)
    await access.grant(db, LI.id, ProductKind.PLAN, plan_id, days=30, now=clock.now())
    await db.commit()
    await db.close()
    for _ in range(2):  # lapse, renew, lapse again: one offer, ever
        clock.advance(days=32)
        await app.scheduler.drain()
        clock.advance(minutes=1)
        await app.scheduler.drain()
        await access.grant(db, LI.id, ProductKind.PLAN, plan_id, days=30, now=clock.now())
        await db.commit()
        await db.close()
    offers = [r for r in h.session.of_type(SendMessage) if r.chat_id == LI.id and "BACK" in r.text]
    assert len(offers) == 1
    assert "25%" in offers[0].text and "Studio" in offers[0].text
    assert isinstance(offers[0].reply_markup, InlineKeyboardMarkup)
    (row,) = list(await db.scalars(select(WinbackOffer)))
    coupon = await db.get(Coupon, row.coupon_id)
    assert coupon is not None
    assert (coupon.kind, coupon.value, coupon.max_uses, coupon.product_id) == (
        CouponKind.PERCENT,
        25,
        1,
        plan_id,
    )
    assert coupon.code in offers[0].text


async def test_a_cancelled_subscription_is_offered_once_and_only_after_its_period(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    await creator_with_course(h, db, CLEO, "Watercolour")
    await h.send("/start", ANN)
    creator = await db.scalar(select(Creator).where(Creator.user_id == CLEO.id))
    assert creator is not None
    plan = Plan(creator_id=creator.id, title="Club", published=True, winback_percent=30)
    db.add(plan)
    await db.flush()
    await access.grant(db, ANN.id, ProductKind.PLAN, plan.id, days=30, now=clock.now())
    # Cancel and lapse both try: the unique row lets one through.
    assert await winback.offer(db, ANN.id, plan, winback.Reason.CANCEL, clock.now())
    assert not await winback.offer(db, ANN.id, plan, winback.Reason.LAPSE, clock.now())
    await db.commit()
    await db.close()
    await app.scheduler.drain()
    offers = lambda: [  # noqa: E731
        r for r in h.session.of_type(SendMessage) if r.chat_id == ANN.id and "BACK" in r.text
    ]
    assert offers() == []  # still paid up: the offer is for the renewal
    clock.advance(days=31)
    await app.scheduler.drain()
    assert len(offers()) == 1
    assert await db.scalar(select(func.count()).select_from(WinbackOffer)) == 1
    assert await db.scalar(select(func.count()).select_from(Entitlement)) >= 1
