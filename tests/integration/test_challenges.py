"""Check-in challenges through the real dispatcher, with the bot's clock moved across
local midnights and Berlin's spring DST change (2026-03-29, 02:00 → 03:00): days are the
member's local dates, streaks and the weekly freeze follow them; the daily reminder at
the member's time; the weekly leaderboard and featured check-ins in the linked group;
and bad input that changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from aiogram.methods import AnswerCallbackQuery, CopyMessage, SendMessage
from aiogram.types import PhotoSize
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.handlers.challenges import ChCB
from bot.models import Challenge, ChallengeMember, CheckIn, Group, Job, ProductKind
from bot.scheduler.clock import ManualClock
from bot.services import access
from bot.services import challenges as ch
from bot.services.users import TelegramProfile, upsert_user
from tests.support.payments import (
    CREATOR_USER,
    make_course,
    make_creator,
    tg,
)
from tests.support.updates import Harness, message_update

ANN = tg(1001, "Ann")
BOB = tg(1002, "Bob")
MAYA = tg(CREATOR_USER, "Maya")
OTTO = tg(3003, "Otto")
GROUP = -1005550001


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(utc(2026, 3, 27, 9, 0))  # a Friday; Berlin is UTC+1 until Sunday


async def world(db: AsyncSession, clock: ManualClock) -> int:
    """Maya's course with a linked group; Ann (Berlin) and Bob (Shanghai) own it."""
    creator_id, course_id = await make_course(db)
    await make_creator(db, OTTO.id, "Otto")
    db.add(Group(chat_id=GROUP, kind="supergroup", title="Club", creator_id=creator_id))
    for who, tz in ((ANN, "Europe/Berlin"), (BOB, "Asia/Shanghai")):
        user, _ = await upsert_user(db, TelegramProfile(id=who.id, first_name=who.first_name))
        user.timezone = tz
        await access.grant(db, who.id, ProductKind.COURSE, course_id, days=None, now=clock.now())
    await db.commit()
    return course_id


async def start(h: Harness, db: AsyncSession, course_id: int) -> int:
    await h.send(f"/challenge new Daily Python days=30 course={course_id} group={GROUP}", MAYA)
    challenge = await db.scalar(select(Challenge))
    assert challenge is not None, h.last_text()
    return challenge.id


def said_to(h: Harness, chat_id: int) -> list[str]:
    return [str(r.text) for r in h.session.of_type(SendMessage) if str(r.chat_id) == str(chat_id)]


def alerts(h: Harness) -> list[str]:
    return [str(r.text) for r in h.session.of_type(AnswerCallbackQuery) if r.text]


async def check_in(h: Harness, user, challenge_id: int, text: str = "did it") -> str:  # type: ignore[no-untyped-def]
    await h.send(f"/checkin {challenge_id}", user)
    if "send a text or a photo" in said_to(h, user.id)[-1]:
        await h.send(text, user)
    return said_to(h, user.id)[-1]


async def member(db: AsyncSession, user_id: int) -> ChallengeMember:
    db.expire_all()
    row = await db.scalar(select(ChallengeMember).where(ChallengeMember.user_id == user_id))
    assert row is not None
    return row


async def test_streaks_follow_local_days_across_midnight_and_dst(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock)
    cid = await start(harness, db, course_id)
    await harness.press(ChCB(a="j", id=cid).pack(), ANN)
    assert "You joined" in alerts(harness)[-1]

    clock.set(utc(2026, 3, 27, 22, 30))  # 23:30 Friday in Berlin
    assert "Streak: 🔥 1 day" in await check_in(harness, ANN, cid)
    clock.set(utc(2026, 3, 27, 23, 10))  # still Friday in UTC, Saturday 00:10 in Berlin
    assert "Streak: 🔥 2 days" in await check_in(harness, ANN, cid)
    clock.set(utc(2026, 3, 28, 22, 30))  # 23:30 Saturday in Berlin: done already
    assert "checked in today already" in await check_in(harness, ANN, cid)
    # Sunday: the clocks go forward at 02:00; 23:30 CEST is 21:30 UTC.
    clock.set(utc(2026, 3, 29, 21, 30))
    assert "Streak: 🔥 3 days" in await check_in(harness, ANN, cid)
    clock.set(utc(2026, 3, 29, 22, 30))  # 00:30 Monday in Berlin (CEST)
    assert "Streak: 🔥 4 days" in await check_in(harness, ANN, cid)
    assert (await member(db, ANN.id)).last_day == date(2026, 3, 30)

    # Tuesday missed: Wednesday's check-in uses the week's one freeze.
    clock.set(utc(2026, 4, 1, 8, 0))
    assert "Streak: 🔥 5 days" in await check_in(harness, ANN, cid)
    assert (await member(db, ANN.id)).freeze_week == date(2026, 3, 30)
    # Thursday missed too, and the freeze of this week is gone: back to one.
    clock.set(utc(2026, 4, 3, 8, 0))
    assert "Streak: 🔥 1 day (best 5 days)" in await check_in(harness, ANN, cid)

    rows = await db.scalars(select(CheckIn.day).order_by(CheckIn.id))
    assert list(rows) == [
        date(2026, 3, 27),
        date(2026, 3, 28),
        date(2026, 3, 29),
        date(2026, 3, 30),
        date(2026, 4, 1),
        date(2026, 4, 3),
    ]

    # Bob in Shanghai: his own days; the leaderboard ranks by the streak as it stands.
    await harness.press(ChCB(a="j", id=cid).pack(), BOB)
    await check_in(harness, BOB, cid)
    clock.set(utc(2026, 4, 3, 20, 0))  # 04:00 Saturday in Shanghai
    assert "Streak: 🔥 2 days" in await check_in(harness, BOB, cid)
    await harness.send(f"/challenge top {cid}", ANN)
    board = said_to(harness, ANN.id)[-1]
    assert board.index("Bob") < board.index("Ann")
    assert "You: #2 of 2" in board


async def test_the_daily_reminder_at_the_members_time(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock)
    cid = await start(harness, db, course_id)
    await harness.press(ChCB(a="j", id=cid).pack(), ANN)
    await harness.send("/checkin time 23:30", ANN)
    assert "quiet hours" in said_to(harness, ANN.id)[-1]
    await harness.send("/checkin time 21:30", ANN)
    assert "21:30" in said_to(harness, ANN.id)[-1]
    [job] = list(await db.scalars(select(Job).where(Job.kind == ch.REMIND_JOB)))
    assert job.run_at == utc(2026, 3, 27, 20, 30)  # 21:30 CET

    harness.session.clear()
    clock.set(utc(2026, 3, 27, 20, 29))
    await app.scheduler.drain()
    assert said_to(harness, ANN.id) == []
    clock.set(utc(2026, 3, 27, 20, 31))
    await app.scheduler.drain()
    assert ["time to check in" in t for t in said_to(harness, ANN.id)] == [True]
    # Saturday she checks in in the morning: no reminder that evening.
    clock.set(utc(2026, 3, 28, 9, 0))
    await check_in(harness, ANN, cid)
    harness.session.clear()
    clock.set(utc(2026, 3, 28, 20, 31))
    await app.scheduler.drain()
    assert said_to(harness, ANN.id) == []
    # Sunday after the DST change: 21:30 CEST is 19:30 UTC.
    clock.set(utc(2026, 3, 29, 19, 29))
    await app.scheduler.drain()
    assert said_to(harness, ANN.id) == []
    clock.set(utc(2026, 3, 29, 19, 31))
    await app.scheduler.drain()
    assert len(said_to(harness, ANN.id)) == 1
    db.expire_all()
    [job] = list(await db.scalars(select(Job).where(Job.kind == ch.REMIND_JOB)))
    assert job.run_at == utc(2026, 3, 30, 19, 30)  # one job, armed for Monday
    # Off: the job ends at its next run.
    await harness.send("/checkin time off", ANN)
    clock.set(utc(2026, 3, 30, 19, 31))
    harness.session.clear()
    await app.scheduler.drain()
    assert said_to(harness, ANN.id) == []


async def test_weekly_leaderboard_and_featured_check_ins_in_the_group(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock)
    cid = await start(harness, db, course_id)
    await harness.press(ChCB(a="j", id=cid).pack(), ANN)
    await harness.send(f"/checkin {cid}", ANN)
    photo = [PhotoSize(file_id="PHOTO1", file_unique_id="p1", width=90, height=90)]
    await harness.feed(message_update(None, ANN, photo=photo, caption="my notes"))
    await harness.send(f"/challenge today {cid}", MAYA)
    assert "my notes" in said_to(harness, MAYA.id)[-1]
    feature = harness.button("Feature")
    harness.session.clear()
    await harness.press(feature, MAYA)
    await app.scheduler.drain()
    assert any("Featured check-in" in t for t in said_to(harness, GROUP))
    assert [c.chat_id for c in harness.session.of_type(CopyMessage)] == [GROUP]
    await harness.send(f"/challenge top {cid}", ANN)
    assert "⭐ Ann: my notes" in said_to(harness, ANN.id)[-1]

    harness.session.clear()
    clock.advance(days=7)
    await app.scheduler.drain()
    [board] = said_to(harness, GROUP)
    assert "leaderboard" in board and "Ann" in board
    clock.advance(days=1)
    await app.scheduler.drain()
    assert len(said_to(harness, GROUP)) == 1  # weekly, not daily


async def test_bad_input_changes_nothing(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id = await world(db, clock)
    stranger = tg(5005, "Sam")
    # Creating: another creator's course, a group not linked, missing parts.
    await harness.send(f"/challenge new X days=5 course={course_id}", OTTO)
    assert "no such course or plan of yours" in said_to(harness, OTTO.id)[-1]
    await harness.send(f"/challenge new X days=5 course={course_id} group=-100999", MAYA)
    assert "not one of your linked groups" in said_to(harness, MAYA.id)[-1]
    await harness.send("/challenge new X days=0 course=1", MAYA)
    assert "Usage" in said_to(harness, MAYA.id)[-1]
    await harness.send("/challenge new X days=3", MAYA)
    assert "Usage" in said_to(harness, MAYA.id)[-1]
    assert await db.scalar(select(func.count()).select_from(Challenge)) == 0

    cid = await start(harness, db, course_id)
    # Joining without the course; checking in without joining; forged buttons.
    await harness.press(ChCB(a="j", id=cid).pack(), stranger)
    assert "for learners of its course" in alerts(harness)[-1]
    assert "not in this challenge" in await check_in(harness, ANN, cid)
    await harness.press(ChCB(a="c", id=cid).pack(), ANN)
    assert "not in this challenge" in alerts(harness)[-1]
    await harness.press(ChCB(a="j", id=999999).pack(), ANN)
    assert "no such challenge" in alerts(harness)[-1]
    await harness.press(ChCB(a="zz", id=cid).pack(), ANN)
    assert "no longer works" in alerts(harness)[-1]
    await harness.press(ChCB(a="j", id=cid).pack(), ANN)
    await harness.press(ChCB(a="j", id=cid).pack(), ANN)
    assert "already" in alerts(harness)[-1]
    # Twice in a day, by the button and by the command.
    await check_in(harness, ANN, cid)
    await harness.press(ChCB(a="c", id=cid).pack(), ANN)
    assert "checked in today already" in alerts(harness)[-1]
    assert "checked in today already" in await check_in(harness, ANN, cid)
    # A feature press by someone else than the challenge's creator.
    row_id = await db.scalar(select(CheckIn.id))
    assert row_id is not None
    await harness.press(ChCB(a="f", id=row_id).pack(), OTTO)
    await harness.press(ChCB(a="f", id=row_id).pack(), ANN)
    assert all("no such challenge" in a for a in alerts(harness)[-2:])
    await harness.send(f"/challenge today {cid}", OTTO)
    assert "another creator" in said_to(harness, OTTO.id)[-1]
    await harness.send(f"/challenge top {cid}", stranger)
    assert "no such challenge" in said_to(harness, stranger.id)[-1]
    db.expire_all()
    assert await db.scalar(select(func.count()).select_from(CheckIn)) == 1
    assert (await db.get(CheckIn, row_id)).featured is False  # type: ignore[union-attr]
    assert (await member(db, ANN.id)).check_ins == 1
    # The database holds once-a-day too (two workers racing past the first check).
    m = await member(db, ANN.id)
    m.last_day = None
    user, _ = await upsert_user(db, TelegramProfile(id=ANN.id, first_name="Ann"))
    await db.refresh(user)
    again = await ch.check_in(db, user, cid, ch.Content(ANN.id, 1, "text", "x"), clock.now())
    assert again == ch.Refusal.TWICE
